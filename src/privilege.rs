//! `--become-user` / `--become-group`: give up root once every privileged thing is open.

use anyhow::{anyhow, bail, Context, Result};
use nix::unistd::{Gid, Group, Uid, User};

/// The ids to become, looked up by name (or given as numbers).
fn lookup(user: &str, group: Option<&str>) -> Result<(Uid, Gid)> {
    let u = match user.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(user),
    }
    .with_context(|| format!("--become-user {user}"))?
    .ok_or_else(|| anyhow!("--become-user {user}: no such user"))?;
    let gid = match group {
        None => u.gid,
        Some(g) => {
            match g.parse::<u32>() {
                Ok(n) => Group::from_gid(Gid::from_raw(n)),
                Err(_) => Group::from_name(g),
            }
            .with_context(|| format!("--become-group {g}"))?
            .ok_or_else(|| anyhow!("--become-group {g}: no such group"))?
            .gid
        }
    };
    Ok((u.uid, gid))
}

/// Before anything is opened: the option needs root, and its names must exist.
pub fn check(user: Option<&str>, group: Option<&str>) -> Result<()> {
    let Some(user) = user else { return Ok(()) };
    let me = Uid::effective();
    if !me.is_root() {
        bail!(
            "--become-user {user}: qof is not running as root (uid {me}); only root can drop \
             privileges, so run it as root or leave the option out"
        );
    }
    lookup(user, group).map(|_| ())
}

/// Become `user` (and `group`, else the user's primary group), for good: supplementary groups
/// are dropped and getting root back must fail. glibc applies set*id to every thread of the
/// process, the exporter thread included.
pub fn drop_to(user: &str, group: Option<&str>) -> Result<()> {
    let (uid, gid) = lookup(user, group)?;
    let what = || format!("--become-user {user}: cannot drop privileges");
    nix::unistd::setgroups(&[gid]).with_context(what)?;
    nix::unistd::setgid(gid).with_context(what)?;
    nix::unistd::setuid(uid).with_context(what)?;
    if !uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("{}: root could be regained after setuid", what());
    }
    tracing::info!("running as user {user} (uid {uid}, gid {gid})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_one_line() {
        let e = lookup("no-such-user-qof", None).unwrap_err().to_string();
        assert_eq!(e, "--become-user no-such-user-qof: no such user");
        let e = lookup("0", Some("no-such-group-qof"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--become-group no-such-group-qof: no such group");
        assert_eq!(
            lookup("0", Some("0")).unwrap(),
            (Uid::from_raw(0), Gid::from_raw(0))
        );
    }
}
