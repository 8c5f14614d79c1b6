// Package login owns the two-layer login: the password step, the TOTP step
// (enrolment with a QR code, verification, the replay guard), recovery
// codes, remembered devices, the login session and its cookie, throttling
// and lockout of both steps, the argon2id password hasher, the password
// policy, and the account lifecycle: the self-service account page
// (/account), which a login of its own with both factors opens (a login
// that serves no authorization request ends there), invitations and open
// registration (/join, /register), and the forgotten password
// (/login/forgot, /login/reset), whose links it mails.
//
// The state of a login lives server-side in a storage.LoginSession row. The
// browser's cookie holds only an opaque random 256-bit value; the row's ID
// is the hex SHA-256 of that value, so a database leak does not yield live
// cookies. The value is replaced after each factor, and a session moves
// only forward, one conditional update at a time:
//
//	GET /login ──► password ──POST /login──► totp ──POST /login/totp──────► done
//	                   │                       └──POST /login/recovery────► done
//	                   └──(a remembered device)───────────────────────────► done
//
// Other packages learn who is logged in through Handler.Current and end a
// login with Handler.Logout; the authorization endpoint hands a pending
// request over by redirecting to /login?auth_request=ID, and gets it back
// at /oauth2/auth?auth_request=ID once both factors have been checked.
package login
