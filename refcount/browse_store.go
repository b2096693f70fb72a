package refcount

// StoreOverview is Stats for the web UI's store page, which anyone who may
// pull can load as often as they like: the totals (with the figures that
// span repositories) and every repository's stored figures, largest
// first, but neither each repository's unique bytes (a scan of its links
// each) nor a listing of the blob store (on S3 a request per thousand
// objects): Repositories[i].UniqueBytes and BlobStore are zero.
func (r *Registry) StoreOverview() (*StatsReport, error) { return r.overview(true) }
