-- Issue 5: per-client settings of pushed authorization requests (RFC 9126),
-- the ID token's signing algorithm and back-channel logout (OpenID Connect
-- Back-Channel Logout 1.0 §2.2).
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
