package s3

import (
	"context"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/opencontainers/go-digest"
)

// Only the answers to a conditional write that lost say the key exists;
// another 409 (versitygw's ExistingObjectIsDirectory, when a concurrent
// DELETE pruned the parent directory of a PUT) is a failure.
func TestPreconditionFailedOnlyForConditionalAnswers(t *testing.T) {
	for code, want := range map[string]bool{
		"PreconditionFailed":         true,
		"ConditionalRequestConflict": true,
		"ExistingObjectIsDirectory":  false,
		"AccessDenied":               false,
	} {
		if got := preconditionFailed(&smithy.GenericAPIError{Code: code}); got != want {
			t.Errorf("%s: preconditionFailed = %v, want %v", code, got, want)
		}
	}
}

// The probe learns that the test server honours conditional writes and
// leaves nothing in the bucket.
func TestProbeOfConditionalWrites(t *testing.T) {
	d := newDriver(t)
	if !d.honoured(context.Background()) {
		t.Fatal("the server's conditional writes were not found honoured")
	}
	if keys := bucketKeys(t, d); len(keys) != 0 {
		t.Fatalf("the probe left %v", keys)
	}
}

// Promote of a digest whose index exists creates nothing and keeps the
// index naming the first upload's data object, whether the driver trusts
// the conditional write alone or, not knowing that the server honours it,
// looks for the index first.
func TestPromoteOverAnIndexKeepsIt(t *testing.T) {
	for _, trust := range []bool{true, false} {
		d := newDriver(t)
		d.cond.v.Store(&trust) // as learnt
		body := randomBytes(4096, 9)
		for _, id := range []string{"a", "b"} {
			if err := d.CreateUpload(id, "r"); err != nil {
				t.Fatal(err)
			}
			appendAll(t, d, id, body)
			if err := d.Seal(id); err != nil {
				t.Fatal(err)
			}
		}
		dg := digest.FromBytes(body)
		if created, err := d.Promote("a", dg); err != nil || !created {
			t.Fatalf("trust %v: first promote: %v %v", trust, created, err)
		}
		before := d.Requests()
		if created, err := d.Promote("b", dg); err != nil || created {
			t.Fatalf("trust %v: second promote: created %v, %v", trust, created, err)
		}
		if heads := d.Requests()["HeadObject"] - before["HeadObject"]; (heads == 0) == !trust {
			t.Errorf("trust %v: the second promote sent %d HEADs", trust, heads)
		}
		if ok, err := d.Promoted("a", dg); err != nil || !ok {
			t.Fatalf("trust %v: the index no longer names the first upload: %v %v", trust, ok, err)
		}
		if ok, err := d.Promoted("b", dg); err != nil || ok {
			t.Fatalf("trust %v: the index names the second upload: %v %v", trust, ok, err)
		}
	}
}
