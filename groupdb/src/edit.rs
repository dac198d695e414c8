//! The pure part: editing the member list of `name:pw:gid:members` (group) or
//! `name:pw:admins:members` (gshadow) lines. Every line the batch does not change is kept byte
//! for byte — comments, NIS `+`/`-` entries, malformed lines, odd spacing, a missing final newline.

use crate::{Change, Outcome};

/// Apply `changes` to the text of one file. Returns the new text and, per change, what
/// happened to it in this file (`None` when the file has no line for the group).
pub fn apply(text: &[u8], changes: &[Change]) -> (Vec<u8>, Vec<Option<Outcome>>) {
    let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(|l| l.to_vec()).collect();
    // split() yields a final empty piece after a trailing newline; remember and restore it.
    let trailing_newline = text.ends_with(b"\n");
    if trailing_newline {
        lines.pop();
    }
    // Index the entry lines by group name once (first occurrence wins, as getgrnam does).
    let mut index: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(name) = group_name(l) {
            index.entry(name.to_vec()).or_insert(i);
        }
    }
    let mut outcomes = Vec::with_capacity(changes.len());
    for change in changes {
        let (user, group, add) = match change {
            Change::Add { user, group } => (user.as_bytes(), group.as_bytes(), true),
            Change::Remove { user, group } => (user.as_bytes(), group.as_bytes(), false),
        };
        let Some(&i) = index.get(group) else {
            outcomes.push(None);
            continue;
        };
        outcomes.push(Some(edit_line(&mut lines[i], user, add)));
    }
    let mut out = lines.join(&b'\n');
    if trailing_newline {
        out.push(b'\n');
    }
    (out, outcomes)
}

/// The group name of a well-formed entry line (4 fields); `None` for anything else.
fn group_name(line: &[u8]) -> Option<&[u8]> {
    if line
        .first()
        .is_some_and(|b| matches!(b, b'#' | b'+' | b'-'))
    {
        return None;
    }
    let fields: Vec<&[u8]> = line.split(|b| *b == b':').collect();
    (fields.len() == 4 && !fields[0].is_empty()).then_some(fields[0])
}

fn edit_line(line: &mut Vec<u8>, user: &[u8], add: bool) -> Outcome {
    let cut = line
        .iter()
        .rposition(|b| *b == b':')
        .map_or(line.len(), |i| i + 1);
    let field = line[cut..].to_vec();
    let mut members: Vec<&[u8]> = if field.is_empty() {
        vec![]
    } else {
        field.split(|b| *b == b',').collect()
    };
    let present = members.contains(&user);
    let outcome = match (add, present) {
        (true, true) => return Outcome::AlreadyMember,
        (false, false) => return Outcome::NotMember,
        (true, false) => {
            members.push(user);
            Outcome::Added
        }
        (false, true) => {
            members.retain(|m| *m != user);
            Outcome::Removed
        }
    };
    let new_field = members.join(&b',');
    line.truncate(cut);
    line.extend_from_slice(&new_field);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(u: &str, g: &str) -> Change {
        Change::Add {
            user: u.into(),
            group: g.into(),
        }
    }
    fn rm(u: &str, g: &str) -> Change {
        Change::Remove {
            user: u.into(),
            group: g.into(),
        }
    }

    #[test]
    fn member_list_edits() {
        let cases: &[(&str, Change, &str, Option<Outcome>)] = &[
            (
                "g:x:10:\n",
                add("a", "g"),
                "g:x:10:a\n",
                Some(Outcome::Added),
            ),
            (
                "g:x:10:b\n",
                add("a", "g"),
                "g:x:10:b,a\n",
                Some(Outcome::Added),
            ),
            (
                "g:x:10:a,b\n",
                add("a", "g"),
                "g:x:10:a,b\n",
                Some(Outcome::AlreadyMember),
            ),
            (
                "g:x:10:a\n",
                rm("a", "g"),
                "g:x:10:\n",
                Some(Outcome::Removed),
            ),
            (
                "g:x:10:b,a,c\n",
                rm("a", "g"),
                "g:x:10:b,c\n",
                Some(Outcome::Removed),
            ),
            (
                "g:x:10:a,b\n",
                rm("a", "g"),
                "g:x:10:b\n",
                Some(Outcome::Removed),
            ),
            (
                "g:x:10:b,a\n",
                rm("a", "g"),
                "g:x:10:b\n",
                Some(Outcome::Removed),
            ),
            (
                "g:x:10:b\n",
                rm("a", "g"),
                "g:x:10:b\n",
                Some(Outcome::NotMember),
            ),
            (
                "g:x:10:ab\n",
                rm("a", "g"),
                "g:x:10:ab\n",
                Some(Outcome::NotMember),
            ),
            ("h:x:10:\n", add("a", "g"), "h:x:10:\n", None),
            ("g:x:10:", add("a", "g"), "g:x:10:a", Some(Outcome::Added)),
        ];
        for (input, change, want, outcome) in cases {
            let (out, o) = apply(input.as_bytes(), std::slice::from_ref(change));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                *want,
                "{input:?} {change:?}"
            );
            assert_eq!(o[0], *outcome, "{input:?}");
        }
    }

    #[test]
    fn untouched_lines_are_byte_identical() {
        let text = b"# comment: with: colons\nroot:x:0:\n+nisgroup\n-excluded:x:1:\nbroken line\ng:x:10:b\r\nweird: spaced :12: c \nother:x:11:z\n";
        let (out, o) = apply(text, &[add("a", "other")]);
        assert_eq!(o[0], Some(Outcome::Added));
        let want = b"# comment: with: colons\nroot:x:0:\n+nisgroup\n-excluded:x:1:\nbroken line\ng:x:10:b\r\nweird: spaced :12: c \nother:x:11:z,a\n";
        assert_eq!(out, want.to_vec());
    }

    #[test]
    fn batch_applies_in_order_and_gshadow_shape_works() {
        let (out, o) = apply(
            b"g:!::a\nh:!:adm:\n",
            &[add("b", "g"), rm("a", "g"), add("c", "h"), add("c", "nope")],
        );
        assert_eq!(out, b"g:!::b\nh:!:adm:c\n".to_vec());
        assert_eq!(
            o,
            vec![
                Some(Outcome::Added),
                Some(Outcome::Removed),
                Some(Outcome::Added),
                None
            ]
        );
    }
}
