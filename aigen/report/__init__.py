"""`python -m aigen.report DATASET_DIR... --out SITE`: a static HTML site of dataset dirs, their audits and detector
outputs that opens from disk. `collect` reads what exists, `pages` writes the pair browser's data in small chunks,
`render` fills the page templates in `site/`, `cli` checks the options and builds the site in place."""
