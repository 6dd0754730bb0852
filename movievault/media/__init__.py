"""What a movie is: its streams, a poster frame and whether a browser can play it.

Read from a few ranged megabytes of the stored object, never the whole file: `reader.py`
turns reads into `Storage.read_range` calls, `probe.py` reads the streams' parameters,
`poster.py` takes a frame, `codecs.py` names the codecs for browsers and for people,
`names.py` reads a film's title and year from its file name, and `subtitle_files.py` turns
a subtitle file into WebVTT.
No Flask and no database here; the catalogue stores what these return.
"""
