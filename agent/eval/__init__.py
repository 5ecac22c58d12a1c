"""`deepsearch eval`: data set loaders, the pooled index, evidence metrics and the report."""
