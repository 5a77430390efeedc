//! Credential files: `add-user` writes them, `serve --users` reads them.
//!
//! One user per line in the core's format (`smoltalk::login::store`):
//! `user:scram-sha-256:ITERATIONS:SALT_HEX:STORED_KEY_HEX:SERVER_KEY_HEX`. Blank lines and lines
//! starting with `#` are skipped. A bad line is an error naming its line
//! number: serving with half a credential file would lock users out without
//! saying why.

use std::error::Error;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use smoltalk::config::MAX_MESSAGE;
use smoltalk::login::store::{
    OwnedRecord, ParseError, SALT_LEN, format_line, parse_line, validate_user,
};

use crate::AddUserArgs;

/// First line of a new users file.
const HEADER: &str = "# smoltalk users, one per line: user:scram-sha-256:ITERATIONS:SALT_HEX:STORED_KEY_HEX:SERVER_KEY_HEX\n\
                      # Add or change a user with: host-sim add-user --users FILE NAME\n";

/// Reads a users file for `serve --users`.
pub fn load(path: &Path) -> Result<Vec<OwnedRecord>, Box<dyn Error>> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read the users file {}: {e}", path.display()))?;
    let records = parse_file(&text).map_err(|(n, e)| format!("{}:{n}: {e}", path.display()))?;
    let mut seen: Vec<&str> = Vec::new();
    for r in &records {
        if seen.contains(&r.user.as_str()) {
            // No name in the log: user names are credentials too.
            log::warn!(
                "{}: a user is listed twice; the first entry counts",
                path.display()
            );
        }
        seen.push(&r.user);
    }
    if records.is_empty() {
        log::warn!("{} has no users: every login will fail", path.display());
    }
    if records
        .iter()
        .any(|r| r.iterations != records[0].iterations)
    {
        // See `Store::dummy`: the reply time then tells which count a user has.
        log::warn!(
            "{}: users have different iteration counts, which login timing reveals",
            path.display()
        );
    }
    Ok(records)
}

/// Parses every record line; the error carries its 1-based line number.
fn parse_file(text: &str) -> Result<Vec<OwnedRecord>, (usize, ParseError)> {
    let records = text.lines().enumerate().filter(|(_, l)| is_record(l));
    records
        .map(|(i, l)| parse_line(l).map_err(|e| (i + 1, e)))
        .collect()
}

/// Whether a line holds a record (not blank, not a comment).
fn is_record(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with('#')
}

/// `host-sim add-user`: adds `args.name` to the file, or replaces its
/// password if it is there.
pub fn add_user(args: AddUserArgs) -> Result<(), Box<dyn Error>> {
    let name = args.name.as_str();
    validate_user(name).map_err(|e| format!("invalid user name {name:?}: {e}"))?;
    if args.iterations == 0 {
        return Err("--iterations must be at least 1".into());
    }
    // Check the file before asking for a password: a file we cannot parse
    // is never rewritten.
    let path = &args.users;
    let old = match fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
    };
    let records = parse_file(old.as_deref().unwrap_or("")).map_err(|(n, e)| {
        format!(
            "{}:{n}: {e} (fix or remove that line; the file was not changed)",
            path.display()
        )
    })?;

    let password = read_password(name, args.password_stdin)?;
    check_password(name, &password)?;
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| format!("no random numbers for the salt: {e}"))?;
    let record = OwnedRecord::from_password(name, &password, args.iterations, salt)?;
    drop(password);

    if records
        .iter()
        .any(|r| r.user != name && r.iterations != args.iterations)
    {
        log::warn!("other users have a different iteration count, which login timing reveals");
    }
    let (text, replaced) = upsert(old.as_deref(), name, &format_line(&record.as_record()));
    write_atomically(path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let verb = if replaced {
        "changed the password of"
    } else {
        "added"
    };
    println!("{verb} {name} in {}", path.display());
    Ok(())
}

/// The file with `line` in place of `name`'s record (later duplicates of
/// it dropped), or appended. Other lines, comments included, are kept.
fn upsert(old: Option<&str>, name: &str, line: &str) -> (String, bool) {
    let mut out = String::new();
    let mut replaced = false;
    for l in old.unwrap_or(HEADER).lines() {
        if is_record(l) && parse_line(l).is_ok_and(|r| r.user == name) {
            if !replaced {
                out.push_str(line);
                out.push('\n');
                replaced = true;
            }
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    if !replaced {
        out.push_str(line);
        out.push('\n');
    }
    (out, replaced)
}

/// Reads the password: twice from the terminal without echo, or one line
/// from stdin for scripts.
fn read_password(name: &str, from_stdin: bool) -> Result<String, Box<dyn Error>> {
    if from_stdin {
        let mut line = String::new();
        if io::stdin().lock().read_line(&mut line)? == 0 {
            return Err("--password-stdin: stdin is empty".into());
        }
        let end = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(end);
        return Ok(line);
    }
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt).map_err(|e| {
            format!(
                "cannot read a password from the terminal: {e} (in scripts use --password-stdin)"
            )
        })
    };
    let first = ask(format!("Password for {name}: "))?;
    let second = ask("Again: ".to_owned())?;
    if first != second {
        return Err("the passwords do not match; nothing was changed".into());
    }
    Ok(first)
}

/// Refuses passwords the login service could never receive.
fn check_password(name: &str, password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    if password
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("the password contains spaces or control characters, which `LOGIN user password` cannot carry".into());
    }
    // `LOGIN <user> <password>` must fit in one request.
    let max = MAX_MESSAGE - "LOGIN  ".len() - name.len();
    if password.len() > max {
        return Err(format!(
            "the password is longer than {max} bytes, the most a login request can carry"
        ));
    }
    Ok(())
}

/// Replaces `path` with `text` so that a crash never leaves half a file:
/// write a temporary file beside it, sync, rename. A new file is readable
/// by its owner only; an existing file keeps its permissions.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o600);
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, password: &str) -> String {
        let r = OwnedRecord::from_password(user, password, 2, [1; SALT_LEN]).expect("valid");
        format_line(&r.as_record())
    }

    #[test]
    fn bad_lines_are_reported_by_number() {
        let text = format!("# users\n\n{}\nnot a record\n", record("a", "x"));
        assert_eq!(parse_file(&text).err().map(|(n, _)| n), Some(4));
    }

    #[test]
    fn upsert_replaces_in_place_and_keeps_comments() {
        let old = format!(
            "# keep me\n{}\n{}\n{}\n",
            record("a", "1"),
            record("b", "2"),
            record("a", "3")
        );
        let (text, replaced) = upsert(Some(&old), "a", &record("a", "new"));
        assert!(replaced);
        let expected = format!("# keep me\n{}\n{}\n", record("a", "new"), record("b", "2"));
        assert_eq!(text, expected);
        let (text, replaced) = upsert(Some(&text), "c", &record("c", "x"));
        assert!(!replaced);
        assert!(text.ends_with(&format!("{}\n", record("c", "x"))));
    }

    #[test]
    fn a_new_file_starts_with_its_format() {
        let (text, _) = upsert(None, "a", &record("a", "1"));
        assert!(text.starts_with("# smoltalk users"));
        assert_eq!(parse_file(&text).expect("parses").len(), 1);
    }

    #[test]
    fn passwords_the_line_protocol_cannot_carry_are_refused() {
        assert!(check_password("u", "").is_err());
        assert!(check_password("u", "two words").is_err());
        assert!(check_password("u", &"x".repeat(MAX_MESSAGE)).is_err());
        assert!(check_password("u", "s3cr3t!").is_ok());
    }
}
