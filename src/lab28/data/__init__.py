"""Dataset acquisition: safe downloads and archive extraction, dataset fetchers and the IDX file reader."""
