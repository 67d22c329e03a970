//! pg_hba.conf parsing and matching. SKELETON.
