"""GitHub and GitLab, behind one small interface (`base.Forge`): webhook parsing and
verification (`events`, pure), the PR/MR comment (`comment`, pure), and one client per forge
(`github`, `gitlab`) that does the I/O through PyGithub / python-gitlab."""
