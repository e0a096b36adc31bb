"""The history as HTML that opens offline: ``asv publish`` of the recorded results, then asv's CDN scripts
replaced by the copies shipped in ``vendor/``.

asv's index.html loads jQuery, flot, stupidtable, blueimp-md5 and Bootstrap from three CDNs; on a machine
without internet (this project's rule: nothing downloads at run time) the page stays blank. After asv
writes the pages, each such tag is pointed at ``vendor/<file>`` (the files and where each came from:
``vendor/LICENSES.md``) and Bootstrap's icon font is put where its stylesheet looks for it. A CDN tag
this module does not know (a newer asv) is an error that names it, not a page that silently needs the
internet.

asv's pages read their data with XMLHttpRequest, which browsers refuse for ``file://`` pages: open the
folder through a local web server (``asv preview``, or ``python -m http.server -d DIR``), offline.

Must not: measure; download anything.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from yolobench.errors import UserError

VENDOR = Path(__file__).with_name("vendor")
# the last part of each CDN address asv's index.html loads -> the shipped file
CDN_FILES = {
    "jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "jquery.flot.min.js": "jquery.flot-0.8.3.js",
    "jquery.flot.time.min.js": "jquery.flot.time-0.8.3.js",
    "jquery.flot.selection.min.js": "jquery.flot.selection-0.8.3.js",
    "jquery.flot.categories.min.js": "jquery.flot.categories-0.8.3.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable-1.1.3.min.js",
    "md5.min.js": "md5-2.19.0.min.js",
    "bootstrap.min.js": "bootstrap-3.1.1.min.js",
    "bootstrap.min.css": "bootstrap-3.1.1.min.css",
}
FONT = "glyphicons-halflings-regular.woff"  # Bootstrap's icons; its CSS looks in ../fonts/
_REMOTE_TAG = re.compile(r'<(script|link)\b[^>]*?\b(src|href)="(https?://[^"]+)"[^>]*>(\s*</script>)?', re.S)


def make_offline(html_dir: Path) -> list[str]:
    """Point every CDN tag of ``html_dir``'s index.html at the shipped copy; return the files used."""
    index = html_dir / "index.html"
    text = index.read_text(encoding="utf-8")
    used = []

    def local(match: re.Match) -> str:
        tag, url = match.group(1), match.group(3)
        name = url.rsplit("/", 1)[-1]
        if tag == "link" and "stylesheet" not in match.group(0):
            return match.group(0)  # a plain link (the feed's alternate), not something the page loads
        if name not in CDN_FILES:
            raise UserError(f"asv's index.html loads {url}, which yolobench does not ship: the history would need "
                            "the internet (a newer asv than this version of yolobench knows?)")
        used.append(CDN_FILES[name])
        if tag == "script":
            return f'<script type="text/javascript" src="vendor/{CDN_FILES[name]}"></script>'
        return f'<link rel="stylesheet" href="vendor/{CDN_FILES[name]}">'

    text = _REMOTE_TAG.sub(local, text)
    (html_dir / "vendor").mkdir(exist_ok=True)
    for name in used:
        shutil.copyfile(VENDOR / name, html_dir / "vendor" / name)
    (html_dir / "fonts").mkdir(exist_ok=True)
    shutil.copyfile(VENDOR / FONT, html_dir / "fonts" / FONT)
    index.write_text(text, encoding="utf-8")
    return used


def remote_loads(html_dir: Path) -> list[str]:
    """Addresses the pages would load from the network: scripts, stylesheets, CSS url()s (none, offline)."""
    found = []
    for path in sorted(html_dir.rglob("*")):
        if path.suffix not in (".html", ".css") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in _REMOTE_TAG.finditer(text):
            if match.group(1) == "script" or "stylesheet" in match.group(0):
                found.append(f"{path.name}: {match.group(3)}")
        found += [f"{path.name}: {url}" for url in re.findall(r"url\(\s*['\"]?(https?://[^'\")]+)", text)]
    return found


def publish(results_dir: Path, html_dir: Path, *, config: Path, quiet: bool = True) -> Path:
    """``asv publish`` of ``results_dir`` into ``html_dir`` (replaced whole: written beside it, then moved),
    made offline. ``config`` is the project's asv.conf.json (its repository gives asv the commit order)."""
    from asv import util
    from asv.commands.publish import Publish
    from asv.config import Config
    from asv.console import log

    from yolobench.fsutil import replace_dir

    if not (results_dir / "benchmarks.json").exists():
        raise UserError(f"{results_dir}: no recorded history (no benchmarks.json); record a run first: "
                        "yolobench history record RUN.json.gz")
    html_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{html_dir.name}.", dir=html_dir.parent))
    try:
        conf = Config.load(str(config))
        conf.results_dir = str(results_dir.resolve())
        conf.html_dir = str(work / "html")
        if not quiet:
            log.enable()
        try:
            Publish.run(conf, pull=False)
        except util.UserError as err:
            raise UserError(f"asv publish: {err}") from None
        make_offline(work / "html")
        left = remote_loads(work / "html")
        if left:
            raise UserError("the published history still loads from the network: " + "; ".join(left))
        replace_dir(work / "html", html_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return html_dir
