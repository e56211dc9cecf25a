"""The web UI: one page (static HTML, CSS and ES modules, no build step) over the stages' own HTTP
routes, and the few JSON routes the page needs that no stage serves (training runs)."""
