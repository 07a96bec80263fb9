"""Hub-ready exports of dataset dirs: `collect` (pairs, splits, columns) -> `shards` (Parquet or WebDataset) ->
`card` (README.md, with `licenses`); `cli` wires them (`python -m aigen.export`)."""
