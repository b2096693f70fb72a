package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"
)

// loadTLS reads the certificate and key at startup, so that a bad or
// missing file stops the server with a message saying which and why,
// rather than failing every handshake.
func loadTLS(certFile, keyFile string, now time.Time) (*tls.Config, []string, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("TLS certificate %s: %w", certFile, err)
	}
	cert.Leaf = leaf
	var warnings []string
	if now.After(leaf.NotAfter) {
		warnings = append(warnings, fmt.Sprintf("TLS certificate %s expired on %s", certFile, leaf.NotAfter.Format(time.RFC3339)))
	}
	if now.Before(leaf.NotBefore) {
		warnings = append(warnings, fmt.Sprintf("TLS certificate %s is not valid before %s", certFile, leaf.NotBefore.Format(time.RFC3339)))
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, warnings, nil
}
