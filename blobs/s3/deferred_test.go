package s3

import (
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
)

// A deferred upload stores nothing until its first Append; its token is
// good on every driver over the bucket (one key, made once) and for its
// own id and repository only; a driver that holds it after Vouch appends
// with no read, and the state that Append writes is the upload's record
// from then on, for any driver.
func TestDeferredUpload(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	a, b := driverOn(t, srv, bucket), driverOn(t, srv, bucket)
	for _, d := range []*Driver{a, b} {
		if err := d.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	issued := time.Unix(1_800_000_000, 0)
	var tok string
	var err error
	got := delta(a, func() { tok, err = a.DeferUpload("u", "team/app", issued) })
	if err != nil {
		t.Fatal(err)
	}
	exactly(t, "the first deferred upload on a bucket", got, map[string]uint64{"GetObject": 1, "PutObject": 1})
	got = delta(a, func() {
		if _, err := a.DeferUpload("v", "team/app", issued); err != nil {
			t.Fatal(err)
		}
	})
	exactly(t, "a deferred upload once the key is known", got, map[string]uint64{})
	if _, err := b.Upload("u"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("a deferred upload's record before its first bytes: %v, want none", err)
	}

	for name, ok := range map[string]bool{
		"another repository": b.Vouch("u", "team/other", tok, issued, true),
		"another upload":     b.Vouch("v", "team/app", tok, issued, true),
		"a forged token":     b.Vouch("u", "team/app", "6b49d200-00000000000000000000000000000000", issued, true),
		// Good for an upload life from when it was issued, and its
		// time is signed with the rest.
		"a token older than the upload life": b.Vouch("u", "team/app", tok, issued.Add(time.Second), true),
		"a token dated later":                b.Vouch("u", "team/app", redate(tok, issued.Add(time.Hour)), issued, true),
		"a token with no date":               b.Vouch("u", "team/app", tok[strings.Index(tok, "-")+1:], time.Time{}, true),
	} {
		if ok {
			t.Errorf("%s: the token vouched for it", name)
		}
	}

	release := b.Hold("u")
	if !b.Vouch("u", "team/app", tok, issued, true) {
		t.Fatal("the token made by another driver over the bucket does not vouch for its upload")
	}
	body := randomBytes(100<<10, 12)
	run := &running{h: sha256.New()}
	got = delta(b, func() {
		if n, err := b.AppendCheckpoint("u", 0, run.tee(body), run.cp); err != nil || n != int64(len(body)) {
			t.Fatalf("append: %d %v", n, err)
		}
	})
	release()
	exactly(t, "the first Append of a deferred upload", got, map[string]uint64{"PutObject": 2})
	info, err := a.Upload("u")
	if err != nil || info.Repo != "team/app" || info.Size != int64(len(body)) {
		t.Fatalf("the upload's record after its first bytes: %+v, %v", info, err)
	}

	// The token again, now that the upload has a record: the first
	// write under it is refused, and the record stays as it was.
	release = a.Hold("u")
	if !a.Vouch("u", "team/app", tok, issued, true) {
		t.Fatal("the token no longer vouches for its upload")
	}
	run = &running{h: sha256.New()}
	if _, err := a.AppendCheckpoint("u", 0, run.tee(randomBytes(1000, 13)), run.cp); !errors.Is(err, driver.ErrStale) {
		t.Fatalf("an Append under a stale token: %v, want driver.ErrStale", err)
	}
	release()
	if info, err := b.Upload("u"); err != nil || info.Size != int64(len(body)) {
		t.Fatalf("the upload's record after the refused Append: %+v, %v", info, err)
	}
}

// A key of upload tokens that is not one (damaged, or written by something
// else) is refused, not used: no upload is deferred with it.
func TestDeferredUploadRefusesADamagedKey(t *testing.T) {
	d := pingedDriver(t)
	if err := d.put(t.Context(), d.tokenKeyKey(), []byte("short"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeferUpload("u", "r", time.Now()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a deferred upload with a key of 5 bytes: %v, want ErrCorrupt", err)
	}
	if d.Vouch("u", "r", "6b49d200-00000000000000000000000000000000", time.Time{}, true) {
		t.Fatal("a token checked against a damaged key")
	}
}

// redate is tok with the time it says it was issued at changed to at.
func redate(tok string, at time.Time) string {
	_, mac, _ := strings.Cut(tok, "-")
	return strconv.FormatInt(at.Unix(), 16) + "-" + mac
}
