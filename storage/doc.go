// Package storage owns everything twostep keeps: users, clients, login
// sessions, pending authorization requests, consent grants, signing keys,
// throttling counters, the back-channel logouts waiting for delivery and
// fosite's OAuth 2.0 / OpenID Connect sessions, pushed authorization
// requests among them.
//
// One *Store serves both SQLite (modernc.org/sqlite, the embedded default)
// and PostgreSQL (lib/pq). Every query is written once with ? placeholders
// and rebound for the driver; dialect differences live only in the embedded
// migrations. Secrets (TOTP seeds, private signing keys) are sealed with
// AES-256-GCM before they reach the database.
package storage
