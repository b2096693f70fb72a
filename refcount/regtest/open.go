package regtest

import (
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
)

// Options shape a registry under test. The zero value is a registry on the
// default backend with kvreg's default windows, checked when the test ends.
type Options struct {
	Backend Backend // the first of Backends() when zero
	// Blobs pins the blob store (BlobsLocal, BlobsS3) over the backend's,
	// for a test that must look at files on disk (disk full, a file
	// damaged by hand, sendfile, file modes); empty keeps the backend's.
	// BlobsS3 needs the server Run starts under KVREG_TEST_BLOBS=s3.
	Blobs string
	Root  string // a new temporary directory when empty
	// From is a data directory copied into Root before the registry opens
	// it: a store written earlier (an older schema, a damaged store). Its
	// blobs are files, so it needs the local blob store.
	From        string
	UploadGrace time.Duration // 1h when zero
	PinWindow   time.Duration // 10m when zero
	Clock       *Clock        // a new clock when nil
	// NoCheck leaves out the fsck at the end, for tests that damage the
	// store on purpose and assert what fsck says themselves.
	NoCheck bool
	// Shared opens the registry as one of several processes sharing its
	// database and blob store (refcount.Options.Shared, no exclusive
	// lock): see Replica.
	Shared bool
	// CachePrefixes are the pull-through cache's repository prefixes
	// (refcount.Options.CachePrefixes).
	CachePrefixes []string
	// Policies are the operator's rules (refcount.Options.Policies).
	Policies *policy.Set
	// Events are the receivers of events (refcount.Options.Events).
	Events []refcount.Endpoint
	// DB is the PostgreSQL database to open, a URL, instead of a new one
	// (for one reached through a fault-injecting proxy, say); the
	// backend must be PostgreSQL.
	DB string
}

// Registry is a registry under test: the refcount.Registry with its data
// directory and its clock.
type Registry struct {
	*refcount.Registry
	Root    string
	Clock   *Clock
	Backend Backend // Backend.Blob is the blob store in use, Options.Blobs applied
	// S3 is the server and Bucket the bucket of the blobs when
	// Backend.Blob is BlobsS3.
	S3     s3test.Server
	Bucket string

	t      testing.TB
	opts   Options
	db     string // what kv.Open opens: "" for <Root>/kvreg.db, or a URL
	blobs  string // what blobs.OpenTarget opens: "" for <Root>, or an s3:// URL
	closed bool   // by the test itself, through Close
}

// Open opens a registry for the test; it is closed when the test ends,
// after a deep fsck that fails the test on any broken invariant.
func Open(t testing.TB, o Options) *Registry {
	t.Helper()
	if o.Backend == (Backend{}) {
		bs, err := Backends()
		if err != nil {
			t.Fatal(err)
		}
		o.Backend = bs[0]
	}
	if o.Backend.Blob == "" {
		o.Backend.Blob = BlobsLocal
	}
	if o.Blobs != "" {
		o.Backend.Blob = o.Blobs
	}
	if o.Root == "" {
		o.Root = filepath.Join(t.TempDir(), "data")
	}
	if o.UploadGrace == 0 {
		o.UploadGrace = time.Hour
	}
	if o.PinWindow == 0 {
		o.PinWindow = 10 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = NewClock()
	}
	if o.From != "" {
		if err := CopyDir(o.From, o.Root); err != nil {
			t.Fatalf("regtest: copy %s: %v", o.From, err)
		}
	}
	r := &Registry{Root: o.Root, Clock: o.Clock, Backend: o.Backend, t: t, opts: o}
	switch o.Backend.DB {
	case "postgres":
		// A database of its own, dropped when the test ends (after the
		// registry's cleanup below, which runs first).
		r.db = o.DB
		if r.db == "" {
			r.db = pgtest.NewDatabase(t)
		}
	case "bolt":
		if o.DB != "" {
			t.Fatalf("regtest: DB %q is a PostgreSQL URL, the backend is %s", o.DB, o.Backend.Name)
		}
	default:
		t.Fatalf("regtest: backend %q: unknown database %q", o.Backend.Name, o.Backend.DB)
	}
	switch o.Backend.Blob {
	case BlobsS3:
		if o.From != "" {
			t.Fatalf("regtest: From copies blob files: pin Blobs: regtest.BlobsLocal")
		}
		// A bucket of its own, removed when the test ends (after the
		// registry's cleanup below, which runs first).
		r.S3, r.Bucket = s3test.Bucket(t)
		r.blobs = (&url.URL{Scheme: "s3", Host: r.Bucket, RawQuery: url.Values{
			"endpoint":   {r.S3.Endpoint},
			"region":     {r.S3.Region},
			"path-style": {"true"},
		}.Encode()}).String()
	case BlobsLocal:
	default:
		t.Fatalf("regtest: unknown blob store %q", o.Backend.Blob)
	}
	r.open()
	t.Cleanup(r.finish)
	return r
}

func (r *Registry) open() {
	r.t.Helper()
	reg, err := refcount.OpenStores(r.Root, r.db, r.blobs, kv.Options{Exclusive: !r.opts.Shared}, r.refcountOptions())
	if err != nil {
		r.t.Fatalf("regtest: open registry (%s, %s blobs): %v", r.Backend.Name, r.Backend.Blob, err)
	}
	r.Registry = reg
	r.closed = false
}

func (r *Registry) refcountOptions() refcount.Options {
	return refcount.Options{
		Now:           r.Clock.Now,
		UploadGrace:   r.opts.UploadGrace,
		PinWindow:     r.opts.PinWindow,
		Shared:        r.opts.Shared,
		CachePrefixes: r.opts.CachePrefixes,
		Policies:      r.opts.Policies,
		OwnQuotas:     true,
		Events:        r.opts.Events,
	}
}

// Close closes the registry before the test ends (to see how kvreg behaves
// without its store); Reopen opens it again. A registry left closed is not
// checked at the end.
func (r *Registry) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.Registry.Close()
}

// Reopen closes the registry and opens it again over the same store, as a
// restart does (startup recovery included).
func (r *Registry) Reopen() {
	r.t.Helper()
	if err := r.Close(); err != nil {
		r.t.Fatalf("regtest: close registry: %v", err)
	}
	r.open()
}

// SetPolicies reopens the registry with other rules, as a restart with
// another configuration does.
func (r *Registry) SetPolicies(p *policy.Set) {
	r.t.Helper()
	r.opts.Policies = p
	r.Reopen()
}

// Problems runs fsck (deep: every blob rehashed) and returns what it found.
func (r *Registry) Problems() []refcount.Problem {
	r.t.Helper()
	p, err := r.Check(true)
	if err != nil {
		r.t.Fatalf("regtest: fsck: %v", err)
	}
	return p
}

// MustClean fails the test unless fsck finds the store clean.
func (r *Registry) MustClean() {
	r.t.Helper()
	if p := r.Problems(); len(p) != 0 {
		r.t.Fatalf("regtest: fsck found %d problem(s): %v", len(p), p)
	}
}

func (r *Registry) finish() {
	if r.closed {
		return
	}
	if !r.opts.NoCheck && !r.t.Failed() {
		if p, err := r.Check(true); err != nil {
			r.t.Errorf("regtest: fsck at the end of the test: %v", err)
		} else if len(p) != 0 {
			r.t.Errorf("regtest: fsck at the end of the test found %d problem(s): %v", len(p), p)
		}
	}
	if err := r.Registry.Close(); err != nil {
		r.t.Errorf("regtest: close registry: %v", err)
	}
}
