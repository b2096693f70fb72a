package s3

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
)

var _ driver.Deferrer = (*Driver)(nil)

// An upload starts with no request (driver.Deferrer): its state object is
// first written by its first Append, and until then the client carries a
// token, an HMAC of the upload's id and repository, that any process
// sharing the bucket checks with the key under keys/uploads, and that
// says when it was issued, so that it is good for no longer than an
// upload may stay idle. The key is
// made once per bucket (a conditional write, so that processes starting
// together agree on it) and read once per process. On a server that may
// not honour conditional writes, uploads are not deferred: two processes
// could each keep a key of their own.

// errNoDeferral: the server may not honour conditional writes.
var errNoDeferral = errors.New("s3 blob store: uploads are not deferred on a server that may not honour conditional writes")

// tokenKeyLen is the size of the key that signs upload tokens.
const tokenKeyLen = 32

func (d *Driver) tokenKeyKey() string { return d.key("keys", "uploads") }

// tokenKey is the bucket's key for upload tokens, read (or made) at the
// first call that succeeds.
func (d *Driver) tokenKey(ctx context.Context) ([]byte, error) {
	return d.tokKey.get(func() ([]byte, error) { return d.loadTokenKey(ctx) })
}

// loadTokenKey reads the key of upload tokens, or makes it if there is none.
func (d *Driver) loadTokenKey(ctx context.Context) ([]byte, error) {
	if !d.honoured(ctx) {
		return nil, errNoDeferral
	}
	key := d.tokenKeyKey()
	b, err := d.getSmall(ctx, key)
	if errors.Is(err, driver.ErrNotFound) {
		b = make([]byte, tokenKeyLen)
		rand.Read(b)
		if err = d.put(ctx, key, b, true); errors.Is(err, errExists) {
			b, err = d.getSmall(ctx, key)
		}
	}
	if err != nil {
		return nil, err
	}
	if len(b) != tokenKeyLen {
		return nil, fmt.Errorf("%w: %s holds %d bytes, not a key of %d", ErrCorrupt, key, len(b), tokenKeyLen)
	}
	return b, nil
}

// token is the token of upload id of repo issued at the Unix second
// issued, under key: that second in hex, a dash, and the HMAC of the
// three.
func token(key []byte, id, repo string, issued int64) string {
	at := strconv.FormatInt(issued, 16)
	m := hmac.New(sha256.New, key)
	io.WriteString(m, id)
	m.Write([]byte{0})
	io.WriteString(m, repo)
	m.Write([]byte{0})
	io.WriteString(m, at)
	return at + "-" + hex.EncodeToString(m.Sum(nil)[:16])
}

// tokenIssued is the Unix second a token says it was issued at.
func tokenIssued(tok string) (int64, bool) {
	at, _, ok := strings.Cut(tok, "-")
	if !ok || at == "" || len(at) > 16 {
		return 0, false
	}
	n, err := strconv.ParseInt(at, 16, 64)
	return n, err == nil
}

// DeferUpload signs upload id of repo, issued at issued, storing nothing.
func (d *Driver) DeferUpload(id, repo string, issued time.Time) (string, error) {
	if err := validID(id); err != nil {
		return "", err
	}
	k, err := d.tokenKey(context.Background())
	if err != nil {
		return "", err
	}
	return token(k, id, repo, issued.Unix()), nil
}

// Vouch checks tok and, if it vouches for the upload and was issued no
// earlier than notBefore, has the hold take the state CreateUpload would
// have written: at once with trust, otherwise where a read finds no state
// object (readState).
func (d *Driver) Vouch(id, repo, tok string, notBefore time.Time, trust bool) bool {
	if validID(id) != nil {
		return false
	}
	issued, ok := tokenIssued(tok)
	if !ok || issued < notBefore.Unix() {
		return false
	}
	k, err := d.tokenKey(context.Background())
	if err != nil || !hmac.Equal([]byte(token(k, id, repo, issued)), []byte(tok)) {
		return false
	}
	b, _ := json.Marshal(&state{Repo: repo, Object: d.dataKey(id), Modified: time.Now()})
	if trust {
		d.keepFresh(id, b)
	} else {
		d.held(id, func(h *hold) { h.vouched = b })
	}
	return true
}

// vouchedState is the state a token vouched for upload id, under its hold,
// for a read that finds no state object, or nil.
func (d *Driver) vouchedState(id string) []byte {
	var b []byte
	d.held(id, func(h *hold) { b = h.vouched })
	return b
}
