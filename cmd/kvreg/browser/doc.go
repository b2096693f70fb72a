// Package browser drives kvreg's web UI in a real headless browser
// (Debian's chromium, through the DevTools protocol with chromedp) against
// a `kvreg serve` process on loopback: it browses from the repository list
// to a manifest, deletes a tag through the confirmation and checks that the
// bytes promised are the bytes the store gave back, checks that a user sees
// only what they may pull, and saves a screenshot of every page.
//
// The screenshots go to $KVREG_ARTIFACTS/ui when that is set, else to
// kvreg-ui-screenshots under the system's temporary directory; the test log
// names the directory. With CI=true a missing browser fails the suite.
package browser
