-- taskgate schema 5: secrets every process of one store shares, by name (e.g.
-- "proxmox_tickets", the key that signs Proxmox tickets, so that a ticket one API node
-- issued is valid on every other). Made once, by whichever process needs it first.

CREATE TABLE secrets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    value      TEXT NOT NULL,                       -- base64url, at least 32 random bytes
    created_at DOUBLE PRECISION NOT NULL
);
