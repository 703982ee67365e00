//! (owned by the daemon work; filled in on its branch)
