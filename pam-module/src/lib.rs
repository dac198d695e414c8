//! pam_elevate.so (skeleton; being filled in).
