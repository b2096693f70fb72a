package manifest

import "errors"

// ErrInvalid: the body is not a manifest kvreg stores. Every refusal of
// Parse wraps it, so that a caller answers 400 MANIFEST_INVALID, never 500.
var ErrInvalid = errors.New("manifest invalid")
