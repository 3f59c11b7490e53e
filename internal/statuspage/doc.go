// Package statuspage holds the end-to-end test of the status page (GET /,
// served by internal/api): the whole process (app.Run against an in-process
// kfake broker and a private PostgreSQL) fed the dev sample, the page read
// in a headless Chromium (/usr/bin/chromium; scripts/ensure-chromium.sh
// installs it, and make test runs that script), its numbers compared with a
// scrape of /metrics taken right after and its latest dead letters with
// the dead-letter topics. It has no code of its own.
//
// STREAMJOIN_UPDATE_SCREENSHOT=1 makes the test write its screenshot to
// docs/status.png (the README shows it); otherwise it goes to a temporary
// directory, so that a test run leaves the work tree as it was.
package statuspage
