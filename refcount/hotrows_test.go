package refcount_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/kv/backend"
	boltkv "github.com/kvreg/kvreg/kv/bolt"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
)

// recorder is a backend.Store that lets the real bbolt store do the work
// and writes down what every read-write transaction reads and writes, per
// operation of the test: the read and write sets a database with
// serializable isolation would track.
type recorder struct {
	backend.Store
	log *accessLog // the current operation's; nil: not recorded
}

// keyRange is a read of every key of table from lo to hi, inclusive (end:
// exclusive; open: to the end of the table).
type keyRange struct {
	table, lo, hi string
	open, end     bool
}

func (r keyRange) holds(table, k string) bool {
	if table != r.table || k < r.lo {
		return false
	}
	return r.open || k < r.hi || (!r.end && k == r.hi)
}

type accessLog struct {
	reads    []keyRange      // Gets are ranges of one key
	writes   map[string]bool // table 0xff key
	adds     map[string]bool // counters added to
	counters []string        // counters read (none expected)
}

func newAccessLog() *accessLog {
	return &accessLog{writes: map[string]bool{}, adds: map[string]bool{}}
}

func (r *recorder) Update(fn func(backend.Tx) error) error {
	return r.Store.Update(func(t backend.Tx) error {
		if r.log == nil {
			return fn(t)
		}
		return fn(&recordingTx{Tx: t, log: r.log})
	})
}

type recordingTx struct {
	backend.Tx
	log *accessLog
}

func wkey(table, k []byte) string { return string(table) + "\xff" + string(k) }

func (t *recordingTx) Get(table, key []byte) ([]byte, error) {
	t.log.reads = append(t.log.reads, keyRange{table: string(table), lo: string(key), hi: string(key)})
	return t.Tx.Get(table, key)
}

func (t *recordingTx) Put(table, key, value []byte) error {
	t.log.writes[wkey(table, key)] = true
	return t.Tx.Put(table, key, value)
}

func (t *recordingTx) Delete(table, key []byte) error {
	t.log.writes[wkey(table, key)] = true
	return t.Tx.Delete(table, key)
}

// Scan reads from from to the last key it hands to fn (the whole rest of
// the table when it runs out of keys).
func (t *recordingTx) Scan(table, from []byte, fn func(k, v []byte) (bool, error)) error {
	r := keyRange{table: string(table), lo: string(from), open: true}
	err := t.Tx.Scan(table, from, func(k, v []byte) (bool, error) {
		r.hi = string(k)
		more, err := fn(k, v)
		if !more || err != nil {
			r.open = false
		}
		return more, err
	})
	t.log.reads = append(t.log.reads, r)
	return err
}

// ScanRange reads from from to the last key it hands to fn when fn stops
// it, and to to otherwise.
func (t *recordingTx) ScanRange(table, from, to []byte, fn func(k, v []byte) (bool, error)) error {
	r := keyRange{table: string(table), lo: string(from), hi: string(to), open: to == nil, end: true}
	err := t.Tx.(backend.RangeScanner).ScanRange(table, from, to, func(k, v []byte) (bool, error) {
		more, err := fn(k, v)
		if !more || err != nil {
			r.hi, r.open, r.end = string(k), false, false
		}
		return more, err
	})
	t.log.reads = append(t.log.reads, r)
	return err
}

func (t *recordingTx) Add(table, key []byte, delta int64) error {
	t.log.adds[wkey(table, key)] = true
	return t.Tx.Add(table, key, delta)
}

func (t *recordingTx) Counter(table, key []byte) (int64, error) {
	t.log.counters = append(t.log.counters, wkey(table, key))
	return t.Tx.Counter(table, key)
}

// conflicts lists what one operation writes that the other reads or
// writes, both ways; Adds are not conflicts (they read nothing).
func conflicts(a, b *accessLog) []string {
	var out []string
	one := func(w, o *accessLog, name string) {
		for k := range w.writes {
			table, key, _ := bytes.Cut([]byte(k), []byte{0xff})
			if o.writes[k] {
				out = append(out, fmt.Sprintf("%s writes %s %q, written by the other", name, table, key))
			}
			for _, r := range o.reads {
				if r.holds(string(table), string(key)) {
					out = append(out, fmt.Sprintf("%s writes %s %q, read by the other (%+v)", name, table, key, r))
					break
				}
			}
		}
	}
	one(a, b, "first")
	one(b, a, "second")
	sort.Strings(out)
	return out
}

// Two pushes to different repositories of images on the same base,
// whose layers are stored already, conflict on no row, nor do the two
// tag deletes that remove those images again: every total they change is
// an Add, the blob records of the shared layers are only read, and
// whether a layer is still linked elsewhere is read from the index in a
// range that the other repository does not write. (That range ends at the
// first repository, in name order, that still links the layer: here the
// base's. Had the other deleting repository come first, the two would
// read each other's entry and conflict, as two deletes that may each be
// the last link of a blob must.)
func TestNoHotRows(t *testing.T) {
	root := t.TempDir()
	st, err := boltkv.Open(filepath.Join(root, refcount.DBFile), boltkv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Store: st}
	db, err := kv.OpenStore(rec, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bs, err := blobs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	reg := refcount.New(db, bs, refcount.Options{UploadGrace: time.Hour, PinWindow: time.Minute, Now: func() time.Time { return now }})
	rnd := rand.New(rand.NewSource(1))
	sizes := map[string]int64{}
	blob := func(repo string, n int) string {
		t.Helper()
		b := make([]byte, n)
		rnd.Read(b)
		d := digest.FromBytes(b)
		if _, err := reg.PutBlob(repo, d, bytes.NewReader(b), int64(n), 0); err != nil {
			t.Fatal(err)
		}
		sizes[string(d)] = int64(n)
		return string(d)
	}
	size := func(d string) int64 { return sizes[d] }
	push := func(repo, tag string, layers ...string) {
		t.Helper()
		if _, err := reg.PutManifest(repo, "", []string{tag}, refcount.MediaTypeOCIManifest, imageBody(layers, size), ""); err != nil {
			t.Fatal(err)
		}
	}

	const base = "library/base"
	l1, l2 := blob(base, 300), blob(base, 400)
	push(base, "latest", blob(base, 50), l1, l2)

	// A push as a client makes it: its own config and layer uploaded, the
	// base layers mounted from the base repository, the manifest put.
	// Each recorded operation starts after a write of its own (a sweep),
	// which forgets the tombstones of the files the previous one removed:
	// that housekeeping follows a committed transaction, never runs beside
	// it.
	record := func() {
		if _, err := reg.Sweep(10); err != nil {
			t.Fatal(err)
		}
		rec.log = newAccessLog()
	}
	pushOnBase := func(repo string) *accessLog {
		record()
		defer func() { rec.log = nil }()
		cfg, own := blob(repo, 60), blob(repo, 500)
		for _, l := range []string{l1, l2} {
			if ok, err := reg.Mount(repo, base, digest.Digest(l)); err != nil || !ok {
				t.Fatalf("mount %s into %s: %v, %v", l, repo, ok, err)
			}
		}
		push(repo, "v1", cfg, l1, l2, own)
		return rec.log
	}
	a, b := pushOnBase("team-a/app"), pushOnBase("team-b/app")
	for name, l := range map[string]*accessLog{"first": a, "second": b} {
		if len(l.writes) == 0 || len(l.adds) == 0 {
			t.Fatalf("%s push recorded %d writes and %d adds", name, len(l.writes), len(l.adds))
		}
		if len(l.counters) != 0 {
			t.Errorf("%s push read counters in a write: %v", name, l.counters)
		}
	}
	if c := conflicts(a, b); len(c) != 0 {
		t.Errorf("two pushes to different repositories conflict:\n%s", joinLines(c))
	}
	// Nor does either write a row of the base or a shared layer's record,
	// which every other push of the same base would then conflict on.
	for name, l := range map[string]*accessLog{"first": a, "second": b} {
		for k := range l.writes {
			if bytes.Contains([]byte(k), []byte(base)) || k == "blobs\xff"+l1 || k == "blobs\xff"+l2 {
				t.Errorf("%s push writes %q", name, k)
			}
		}
	}

	deleteTag := func(repo string) *accessLog {
		record()
		defer func() { rec.log = nil }()
		if n, err := reg.DeleteTag(repo, "v1"); err != nil || n != 560 {
			t.Fatalf("delete %s:v1 reclaimed %d, %v", repo, n, err)
		}
		return rec.log
	}
	a, b = deleteTag("team-a/app"), deleteTag("team-b/app")
	for name, l := range map[string]*accessLog{"first": a, "second": b} {
		if len(l.counters) != 0 {
			t.Errorf("%s delete read counters in a write: %v", name, l.counters)
		}
	}
	if c := conflicts(a, b); len(c) != 0 {
		t.Errorf("two tag deletes in different repositories conflict:\n%s", joinLines(c))
	}
	if p, err := reg.Check(true); err != nil || len(p) != 0 {
		t.Fatalf("fsck: %v, %v", p, err)
	}
}

func joinLines(s []string) string {
	var b bytes.Buffer
	for _, l := range s {
		b.WriteString(l + "\n")
	}
	return b.String()
}
