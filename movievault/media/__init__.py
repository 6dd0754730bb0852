"""What a movie is: its streams, a poster frame and its title, read from a few ranged MB."""
