"""The live view in the browser (issue 19): boards' rows, progress bars, serial tails and MQTT transcripts.

`state.py` is the model (fed by the device link, the boards' consoles, pytest's reports), `server.py` the
aiohttp server that pushes it to the page (server-sent events) and takes the page's actions, `page.html`,
`page.js` and `page.css` the page itself (no framework, no CDN), `lab.py` the `python -m harness lab`
session (broker, firmware server, boards, page), `pytest_live.py` the page of a pytest run (`--hil-live`),
`client.py` a reader of the event stream for scripts and tests.
"""
