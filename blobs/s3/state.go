package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/opencontainers/go-digest"
)

// part is one uploaded part of a multipart upload.
type part struct {
	N    int32  `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// segment is one object of an upload's tail.
type segment struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// bytesOf is where an upload's bytes are: full parts, then the tail, in
// segments (one per Append that filled no part, so that a short chunk
// writes only its own bytes), shorter than a part in all. Checkpoint is
// the caller's checkpoint of these Size bytes (driver.Checkpointer), if
// one was given.
type bytesOf struct {
	Parts      []part    `json:"parts,omitempty"`
	Tail       []segment `json:"tail,omitempty"`
	TailSize   int64     `json:"tailSize,omitempty"`
	Size       int64     `json:"size"`
	Checkpoint []byte    `json:"checkpoint,omitempty"`
}

// names reports whether the tail holds key.
func (b *bytesOf) names(key string) bool {
	if b == nil {
		return false
	}
	for _, s := range b.Tail {
		if s.Key == key {
			return true
		}
	}
	return false
}

// ownKeys are the tail segments st names (with its previous bytes') under
// one of prefixes, each once, but its data object, which is not
// deleted while an index names it: a segment written in place is at the
// data object's key while the state names it as its data object, and
// under data/ with the upload's id when a later Append rewrote it.
func (st *state) ownKeys(prefixes ...string) []string {
	var out []string
	seen := map[string]bool{st.Object: true}
	add := func(b *bytesOf) {
		if b == nil {
			return
		}
		for _, sg := range b.Tail {
			if seen[sg.Key] {
				continue
			}
			for _, p := range prefixes {
				if strings.HasPrefix(sg.Key, p) {
					seen[sg.Key] = true
					out = append(out, sg.Key)
					break
				}
			}
		}
	}
	add(&st.bytesOf)
	add(st.Prev)
	return out
}

// state is an upload's state object. Prev is the upload as it was before
// the last Append, so that Truncate can undo that Append even when it
// filled parts (S3 cannot cut a part, nor read one back before the
// multipart upload completes).
type state struct {
	Repo        string `json:"repo"`
	Object      string `json:"object"` // the data object's key
	MultipartID string `json:"multipartId,omitempty"`
	// Multipart is set before the first multipart upload is created: a
	// create whose answer was lost (a crash, a retry) leaves one no
	// MultipartID names, which RemoveUpload then finds by the key.
	Multipart bool          `json:"multipart,omitempty"`
	Sealed    bool          `json:"sealed,omitempty"`
	Promoting digest.Digest `json:"promoting,omitempty"`
	Modified  time.Time     `json:"modified"`
	Gen       int           `json:"gen"` // names the next tail segment
	bytesOf
	Prev *bytesOf `json:"prev,omitempty"`
	// stored is the state as stored when this copy was read or last
	// written (nil: none known), what a write of it replaces: with
	// states in the database, a write finds the upload as this copy
	// saw it, or fails.
	stored []byte
}

func (d *Driver) uploadPrefix(id string) string { return d.key("uploads", id) + "/" }
func (d *Driver) stateKey(id string) string     { return d.uploadPrefix(id) + "state" }

// readState reads upload id's state (getState), or, while the upload is held
// (Hold), the copy this process read or wrote last; none there, the state a
// token vouched for (Vouch).
func (d *Driver) readState(ctx context.Context, id string) (*state, error) {
	if st := d.heldState(id); st != nil {
		return st, nil
	}
	b, err := d.getState(ctx, id)
	fresh := false
	if errors.Is(err, driver.ErrNotFound) {
		// A deferred upload with no state yet, if a token vouched for it.
		if b = d.vouchedState(id); b != nil {
			err, fresh = nil, true
		}
	}
	if err != nil {
		return nil, err
	}
	st, err := parseState(id, b)
	if err != nil {
		return nil, err
	}
	if fresh {
		d.keepFresh(id, b)
	} else {
		st.stored = b
		d.keepState(id, b)
	}
	return st, nil
}

// writeState writes upload id's state (putState). A write that failed may
// or may not have taken effect: the held copy is dropped, to be read again.
// Over a state Vouch made, the write is made only if no state object
// exists (see driver.Deferrer): one that does fails it with
// driver.ErrStale. With states in the database, any other write is made
// only if the state stored is the one st was read as (st.stored), and
// fails with driver.ErrStale if another process wrote it since, or the
// upload ended (driver.States): so an Append that read the upload before
// a commit elsewhere recorded it and removed its state never writes it
// back, to be resumed, cancelled or sealed again over the blob's bytes.
func (d *Driver) writeState(ctx context.Context, id string, st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	fresh := d.heldFresh(id)
	prev := st.stored
	if !fresh && prev == nil {
		// A copy not read from storage: nothing to write over.
		d.keepState(id, nil)
		return fmt.Errorf("%w: upload %q: a write of a state that was not read", driver.ErrStale, id)
	}
	if fresh {
		prev = nil
	}
	if err := d.putState(ctx, id, b, prev); err != nil {
		d.keepState(id, nil)
		if fresh && errors.Is(err, errExists) {
			return fmt.Errorf("%w: upload %q", driver.ErrStale, id)
		}
		return err
	}
	st.stored = b
	d.keepState(id, b)
	return nil
}

// parseState reads upload id's state from its JSON.
func parseState(id string, b []byte) (*state, error) {
	st := new(state)
	if err := json.Unmarshal(b, st); err != nil || st.Object == "" {
		return nil, fmt.Errorf("%w: state of upload %q: %q", ErrCorrupt, id, b)
	}
	return st, nil
}

// validID refuses an upload id that is not one key segment.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("%w: upload %q", driver.ErrInvalidName, id)
	}
	return nil
}
