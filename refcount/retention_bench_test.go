package refcount_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// What a keep-last rule costs a push: pushes of a new tag (a new
// one-layer image) to a repository whose rule keeps 10, the oldest going
// in each push's transaction, against the same pushes with no rule, and
// with no rule but a DeleteTag of the oldest after each (what a
// retention job beside the registry does).
func BenchmarkPushRetention(b *testing.B) {
	for _, c := range []struct {
		name   string
		rules  *policy.Set
		delete bool
	}{
		{"none", nil, false},
		{"none+DeleteTag", nil, true},
		{"keep-last-10", &policy.Set{Retentions: []policy.Retention{{Repos: []string{"ci/*"}, KeepLast: 10}}}, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newFixture(b, regtest.Options{Policies: c.rules, NoCheck: true})
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = imageBody([]string{string(f.blob("ci/app", 100)), string(f.blob("ci/app", 1000))}, f.size)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.Clock.Advance(time.Millisecond)
				if _, err := f.PutManifest("ci/app", "", []string{fmt.Sprintf("t%07d", i)}, refcount.MediaTypeOCIManifest, bodies[i], ""); err != nil {
					b.Fatal(err)
				}
				if c.delete && i >= 10 {
					if _, err := f.DeleteTag("ci/app", fmt.Sprintf("t%07d", i-10)); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
