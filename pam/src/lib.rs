//! pam_elevate logic (being filled in).
