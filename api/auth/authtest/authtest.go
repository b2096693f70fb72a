// Package authtest makes htpasswd accounts for tests: each user's password
// is its name with "-pw", hashed with bcrypt at the lowest cost (each
// request with credentials checks it). No code but tests imports it.
package authtest

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Password is a test user's password.
func Password(user string) string { return user + "-pw" }

// Htpasswd is the htpasswd text of the users.
func Htpasswd(t testing.TB, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(Password(u)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return b.String()
}
