package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// The delete form is protected by a double-submit token: a random cookie
// the pages set, repeated in the form's hidden field. A page of another
// site can make the browser send the cookie but cannot read it, so it
// cannot fill the field. Nothing is kept on the server, so any replica
// behind a load balancer checks it alike.

// csrfCookie is the cookie's name; csrfField the form field's.
const (
	csrfCookie = "kvreg_ui_csrf"
	csrfField  = "csrf"
)

// ensureToken returns the request's token, setting a new cookie when it
// has none (or one not of kvreg's making).
func ensureToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validToken(c.Value) {
		return c.Value
	}
	var b [32]byte
	rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: tok, Path: Prefix,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	return tok
}

func validToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// checkToken reports whether a POST carries the cookie and the same value
// in its form, compared in constant time.
func checkToken(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validToken(c.Value) {
		return false
	}
	field := r.PostFormValue(csrfField)
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(field)) == 1
}
