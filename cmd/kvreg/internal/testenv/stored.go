package testenv

import (
	"github.com/kvreg/kvreg/blobs"
	"github.com/opencontainers/go-digest"
)

// Stored lists what a data directory's blob store holds: each blob and
// each upload in progress, with its size ("blob <digest>", "upload <id>"),
// so that a test can tell that a refused request wrote nothing.
func Stored(root string) (map[string]int64, error) {
	bs, err := blobs.Open(root)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	err = bs.Walk(func(d digest.Digest, name string, size int64) error {
		if d == "" {
			d = digest.Digest(name)
		}
		out["blob "+string(d)] = size
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids, err := bs.Uploads()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		info, _ := bs.Driver().Upload(id)
		out["upload "+id] = info.Size
	}
	return out, nil
}
