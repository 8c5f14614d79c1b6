// Package storagetest is the one conformance suite every storage backend
// runs, and the helpers other packages' tests use to get a real, empty,
// migrated store: a temp-file SQLite database, or a fresh PostgreSQL schema
// when TWOSTEP_TEST_POSTGRES names a server.
//
// A backend's test runs the suite with a factory that returns the DSN of a
// fresh database:
//
//	func TestSQLite(t *testing.T) {
//		storagetest.Run(t, storagetest.SQLiteDSN)
//	}
//
// Other packages' tests use New with SQLiteDSN, or with PostgresDSN to run
// against PostgreSQL as well, and a Clock they move by hand as the clock of
// the store and of the code under test.
package storagetest
