package s3

import (
	"testing"

	"github.com/aws/smithy-go"
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
