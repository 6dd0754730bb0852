-- The catalogue schema of release 0.1.0, as its create_all made it (sqlite_master).
-- tests/test_migrations.py builds a catalogue from it to test upgrades.
CREATE TABLE user (
	id INTEGER NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	password_hash VARCHAR NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_user_username ON user (username);
CREATE TABLE login_attempt (
	id INTEGER NOT NULL, 
	subject VARCHAR(300) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_login_attempt_subject ON login_attempt (subject);
CREATE INDEX ix_login_attempt_at ON login_attempt (at);
CREATE TABLE file (
	name VARCHAR(255) NOT NULL, 
	size INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	content_type VARCHAR(255) NOT NULL, 
	id INTEGER NOT NULL, 
	owner_id INTEGER NOT NULL, 
	"key" VARCHAR(255) NOT NULL, 
	fingerprint VARCHAR(64), 
	upload_id VARCHAR(64), 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_file_owner_sha256 UNIQUE (owner_id, sha256), 
	FOREIGN KEY(owner_id) REFERENCES user (id), 
	UNIQUE ("key")
);
CREATE INDEX ix_file_owner_created ON file (owner_id, created_at);
CREATE INDEX ix_file_owner_id ON file (owner_id);
CREATE INDEX ix_file_owner_size ON file (owner_id, size);
CREATE INDEX ix_file_created_at ON file (created_at);
CREATE INDEX ix_file_owner_lower_name ON file (owner_id, lower(name));
CREATE INDEX ix_file_upload_id ON file (upload_id);
CREATE TABLE pending_upload (
	id VARCHAR(64) NOT NULL, 
	owner_id INTEGER NOT NULL, 
	sha256 VARCHAR(64), 
	fingerprint VARCHAR(64), 
	size INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	content_type VARCHAR(255) NOT NULL, 
	"key" VARCHAR(255) NOT NULL, 
	method VARCHAR(16) NOT NULL, 
	multipart_id VARCHAR(1024), 
	part_size INTEGER, 
	completing_since DATETIME, 
	created_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_pending_owner_sha256 UNIQUE (owner_id, sha256), 
	FOREIGN KEY(owner_id) REFERENCES user (id), 
	UNIQUE ("key")
);
CREATE INDEX ix_pending_upload_owner_id ON pending_upload (owner_id);
CREATE INDEX ix_pending_upload_expires_at ON pending_upload (expires_at);
CREATE UNIQUE INDEX uq_pending_owner_fingerprint ON pending_upload (owner_id, fingerprint, size) WHERE sha256 IS NULL;
