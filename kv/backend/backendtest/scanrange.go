package backendtest

import (
	"fmt"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
)

// testScanRange: a transaction that is a backend.RangeScanner hands fn
// exactly the keys in [from, to), in byte order, and stops when fn says.
// A store whose transactions are not one passes trivially.
func testScanRange(t *testing.T, s backend.Store) {
	putOrderKeys(t, s)
	cases := []struct {
		from, to string
		nilTo    bool
		stop     int // fn returns false after this many keys; 0: never
		want     []string
	}{
		{from: "a", to: "a\x01", want: []string{"a", "a\x00", "a\x00b", "a\x00\xff"}},
		{from: "a\x00", to: "a\x01", want: []string{"a\x00", "a\x00b", "a\x00\xff"}},
		{from: "a\x00", to: "a\x01", stop: 1, want: []string{"a\x00"}},
		{from: "\xfe", nilTo: true, want: []string{"\xfe", "\xff", "\xff\x00", "\xff\xff"}},
		{from: "", to: "\x01", want: []string{"\x00", "\x00\x00", "\x00\x01"}},
		{from: "b", to: "b\x00", want: []string{"b"}},
		{from: "c", to: "d", want: nil},
	}
	err := s.View(func(tx backend.Tx) error {
		rs, ok := tx.(backend.RangeScanner)
		if !ok {
			return nil
		}
		for _, c := range cases {
			var to []byte
			if !c.nilTo {
				to = []byte(c.to)
			}
			var got []string
			if err := rs.ScanRange(tbl, []byte(c.from), to, func(k, _ []byte) (bool, error) {
				got = append(got, string(k))
				return c.stop == 0 || len(got) < c.stop, nil
			}); err != nil {
				return err
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
				t.Errorf("ScanRange(%q, %q) = %q, want %q", c.from, to, got, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
