//! `elevate list` for people: the profiles a user may use here, like `sudo -l`.

use elevate_proto::ListReply;

/// What the user may run on this host, one profile per paragraph. Ends with a newline.
pub fn format_list(r: &ListReply) -> String {
    if r.profiles.is_empty() {
        return format!(
            "User {} may not run anything with elevate on {}.\n",
            r.user, r.host
        );
    }
    let mut out = format!("User {} may run the following on {}:\n", r.user, r.host);
    for p in &r.profiles {
        let group = p
            .run_as_group
            .as_deref()
            .map(|g| format!(":{g}"))
            .unwrap_or_default();
        let state = if p.usable_now {
            String::new()
        } else {
            ", not active".to_string()
        };
        out.push_str(&format!(
            "\n  {} ({}{state}, as {}{group})",
            p.name, p.access, p.run_as
        ));
        if !p.description.is_empty() {
            out.push_str(&format!(" — {}", p.description));
        }
        out.push('\n');
        for c in &p.commands {
            out.push_str(&format!("      {c}\n"));
        }
        if !p.usable_now {
            if let Some(h) = &p.hint {
                out.push_str(&format!("    to use it: {h}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::ListedProfile;

    #[test]
    fn list_output() {
        let r = ListReply {
            user: "alice".into(),
            host: "web-1".into(),
            profiles: vec![
                ListedProfile {
                    name: "web".into(),
                    description: "Restart".into(),
                    run_as: "root".into(),
                    run_as_group: None,
                    access: "standing".into(),
                    usable_now: true,
                    commands: vec!["/usr/bin/systemctl restart {a|b}".into()],
                    hint: None,
                },
                ListedProfile {
                    name: "db".into(),
                    description: String::new(),
                    run_as: "postgres".into(),
                    run_as_group: None,
                    access: "lease".into(),
                    usable_now: false,
                    commands: vec![],
                    hint: Some("request a lease: elevate request db".into()),
                },
            ],
        };
        let s = format_list(&r);
        assert!(s.contains("User alice may run the following on web-1:"));
        assert!(s.contains("web (standing, as root) — Restart"));
        assert!(s.contains("      /usr/bin/systemctl restart {a|b}"));
        assert!(s.contains("db (lease, not active, as postgres)"));
        assert!(s.contains("to use it: request a lease: elevate request db"));
        let empty = ListReply {
            user: "bob".into(),
            host: "h".into(),
            profiles: vec![],
        };
        assert!(format_list(&empty).contains("may not run anything"));
    }
}
