//! Security groups: creating and deleting them, authorizing and revoking their rules.
