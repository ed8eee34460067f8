"""Building student handouts from reference code, and proving them right.

- :mod:`.files` -- one pass per kind of file (strip, stub, omit, render, copy)
- :mod:`.notebook` -- notebook cells by tag, outputs cleared
- :mod:`.build` -- the pipeline: plan every file of a handout, then write folder, zip, manifest
- :mod:`.archive` -- byte-identical zips and sha256 manifests
- :mod:`.leaks` -- the content scan for solution text, hidden tests and reference-only files
- :mod:`.verify` -- reference passes, stubs fail, nothing leaks
"""
