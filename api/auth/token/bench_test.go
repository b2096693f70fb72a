package token

import (
	"sync"
	"testing"
	"time"
)

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	access := []Access{
		{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "team/base", Actions: []string{"pull"}},
	}
	raw, _, err := f.iss.Issue("alice", access, 5*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.ver.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	f := newFixture(b)
	access := []Access{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.iss.Issue("alice", access, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// Keys change while tokens are checked (a rotation on a live replica).
func TestVerifyDuringRotation(t *testing.T) {
	f := newFixture(t)
	raw, _, _ := f.iss.Issue("alice", nil, time.Minute)
	k2 := newKey(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := f.ver.Verify(raw); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 50 {
		f.ver.SetOwnKeys(k2, f.k)
		f.iss.SetKey(k2)
		f.iss.SetKey(f.k)
	}
	wg.Wait()
}
