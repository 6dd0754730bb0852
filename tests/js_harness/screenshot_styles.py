"""Screenshot the style preview page (pages/styles.html) at desktop and phone widths.

Run: python tests/js_harness/screenshot_styles.py OUTPUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import chromium, origins, serve


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with serve() as port, chromium() as browser:
        for name, width in (("styles-desktop", 1100), ("styles-phone", 390)):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(f"{origins(port)['loopback']}/harness/styles.html")
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            page.close()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
