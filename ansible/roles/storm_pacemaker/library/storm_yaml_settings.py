#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pacemaker maintainers. Apache License 2.0.
"""Set top-level keys of a storm.yaml in a marked block, keeping the rest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: storm_yaml_settings
short_description: Set top-level keys of Storm's storm.yaml in one marked block
description:
  - Writes the given keys as a block between two marker lines and leaves the rest of the
    file as it is, comments and layout included.
  - A key the block sets that is also set elsewhere in the file is commented out there, with
    a note, so that no key appears twice (Storm's YAML parser would silently keep the last).
  - Before writing, the result is parsed and compared with the file it replaces; every key
    outside the block must keep its value, every block key must have the wanted value, and
    no top-level key may appear twice. Otherwise the module fails and writes nothing.
options:
  path:
    description: The storm.yaml to edit.
    type: path
    required: true
  settings:
    description: Top-level keys and their values. Ignored when I(state=absent).
    type: dict
    default: {}
  state:
    description: C(present) writes the block; C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  marker:
    description: Marker line template; C({mark}) becomes C(BEGIN) or C(END).
    type: str
    default: "# {mark} ANSIBLE MANAGED BLOCK: storm_pacemaker"
  create:
    description: Create the file, and its directory, when it is missing (otherwise that is an error).
    type: bool
    default: false
  backup:
    description: Keep a timestamped copy of the file before changing it.
    type: bool
    default: false
extends_documentation_fragment:
  - files
author: pacemaker maintainers
"""

EXAMPLES = r"""
- name: Send heartbeats to Pacemaker
  storm_yaml_settings:
    path: /opt/storm/conf/storm.yaml
    settings:
      storm.cluster.state.store: org.apache.storm.cluster.PaceMakerStateStorageFactory
      pacemaker.servers: [pm1.example.com, pm2.example.com]
      pacemaker.port: 6699
      pacemaker.auth.method: NONE
"""

RETURN = r"""
commented_out:
  description: Keys found outside the block and commented out.
  returned: always
  type: list
  elements: str
backup_file:
  description: The backup copy, when one was made.
  returned: changed and backup
  type: str
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with Ansible
    yaml = None

# A top-level mapping key at column 0: plain, 'single' or "double" quoted.
TOP_KEY = re.compile(r"""^(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^\s#'"\-?:][^#]*?|-[^\s#][^#]*?))[ \t]*:(?:[ \t]|$)""")
BLOCK_PLACE = "\x00block\x00"
NOTE = "# storm_pacemaker: {key} is now set in the ANSIBLE MANAGED BLOCK; was:"


def parse(text):
    data = yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("the top level is a %s, not a mapping" % type(data).__name__)
    return data


def top_level_counts(text):
    """How often each top-level key appears, from YAML's own node tree."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)  # nosec - composes nodes only
    counts = {}
    if isinstance(root, yaml.MappingNode):
        for key_node, _ in root.value:
            if isinstance(key_node, yaml.ScalarNode):
                counts[key_node.value] = counts.get(key_node.value, 0) + 1
    return counts


def top_key(line):
    """The key a column-0 mapping line sets, or None."""
    if not line or line[0] in " \t#" or line.startswith("---") or line.startswith("..."):
        return None
    m = TOP_KEY.match(line)
    if not m:
        return None
    if m.group(3) is not None:
        return m.group(3)
    quoted = m.group(0)[:m.group(0).rstrip().rindex(":")].rstrip()
    return yaml.safe_load(quoted)


def is_continuation(line):
    """Whether a line can belong to the value of the entry above it."""
    stripped = line.strip()
    return stripped == "" or line[0] in " \t#" or line.startswith("- ") or stripped == "-"


def split_block(lines, begin, end):
    """Remove the managed block; return (lines without it, index it was at or None)."""
    try:
        start = lines.index(begin)
    except ValueError:
        return lines, None
    try:
        stop = lines.index(end, start + 1)
    except ValueError:
        raise ValueError("the file has the line %r but not %r after it" % (begin, end))
    return lines[:start] + lines[stop + 1:], start


def comment_out(lines, keys):
    """Comment out the top-level entries that set any of keys."""
    out, found, i = [], [], 0
    while i < len(lines):
        key = top_key(lines[i])
        if key not in keys:
            out.append(lines[i])
            i += 1
            continue
        j = i + 1
        while j < len(lines) and is_continuation(lines[j]):
            j += 1
        # Blank and comment lines after the entry belong to what follows.
        while j > i + 1 and (lines[j - 1].strip() == "" or lines[j - 1].lstrip().startswith("#")):
            j -= 1
        found.append(key)
        out.append(NOTE.format(key=key))
        out.extend("# " + line if line else "#" for line in lines[i:j])
        i = j
    return out, found


def render_block(settings, begin, end):
    body = []
    for key, value in settings.items():
        body.extend(yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False,
                                   allow_unicode=True, width=1000).rstrip("\n").split("\n"))
    return [begin] + body + [end]


def edit(text, settings, state, marker):
    begin, end = marker.replace("{mark}", "BEGIN"), marker.replace("{mark}", "END")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines, at = split_block(lines, begin, end)
    found = []
    if state == "absent" and at is not None:
        # Drop the blank line that separated the block from its neighbours.
        if at == len(lines) and lines and lines[-1].strip() == "":
            lines.pop()
        elif 0 < at < len(lines) and lines[at - 1].strip() == "" and lines[at].strip() == "":
            del lines[at]
    if state == "present":
        if at is None:
            if lines and lines[-1].strip() != "":
                lines.append("")
            at = len(lines)
        # A placeholder keeps the block's place while lines are commented out.
        lines = lines[:at] + [BLOCK_PLACE] + lines[at:]
        lines, found = comment_out(lines, set(settings))
        at = lines.index(BLOCK_PLACE)
        lines = lines[:at] + render_block(settings, begin, end) + lines[at + 1:]
    new = "\n".join(lines) + "\n" if lines else ""
    return new, found


def check(old_text, new_text, settings, state):
    """Prove the edit changed exactly the managed keys, and each is set once."""
    before = parse(old_text)
    try:
        after = parse(new_text)
        counts = top_level_counts(new_text)
    except yaml.YAMLError as e:
        raise ValueError("the edited file would not be valid YAML (does another key refer to a "
                         "commented-out one by alias?): %s" % e)
    managed = set(settings) if state == "present" else set()
    for key in sorted(managed):
        if counts.get(key, 0) != 1:
            raise ValueError("the result would set %s %d times" % (key, counts.get(key, 0)))
        if after[key] != settings[key]:
            raise ValueError("the result would set %s to %r instead of %r" % (key, after[key], settings[key]))
    if state == "absent":
        # The block's keys go; keys it had commented out stay commented.
        return
    rest_before = {k: v for k, v in before.items() if k not in managed}
    rest_after = {k: v for k, v in after.items() if k not in managed}
    if rest_before != rest_after:
        changed = sorted(str(k) for k in set(rest_before) | set(rest_after)
                         if rest_before.get(k) != rest_after.get(k))
        raise ValueError("the edit would change keys outside the block: %s" % ", ".join(changed))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            settings=dict(type="dict", default={}),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            marker=dict(type="str", default="# {mark} ANSIBLE MANAGED BLOCK: storm_pacemaker"),
            create=dict(type="bool", default=False),
            backup=dict(type="bool", default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if yaml is None:
        module.fail_json(msg="PyYAML is required on the managed host")
    path = module.params["path"]
    settings = module.params["settings"]
    state = module.params["state"]
    marker = module.params["marker"]
    if "{mark}" not in marker:
        module.fail_json(msg="marker must contain {mark}")

    exists = os.path.exists(path)
    if not exists and not module.params["create"] and state == "present":
        module.fail_json(msg="%s does not exist (is Storm installed? set create to make it)" % path)
    old = ""
    if exists:
        with open(path, "rb") as f:
            old = f.read().decode("utf-8")

    try:
        parse(old)
    except (ValueError, yaml.YAMLError) as e:
        module.fail_json(msg="%s is not a YAML mapping Storm could read: %s; nothing written" % (path, to_native(e)))
    try:
        new, found = edit(old, settings, state, marker)
        check(old, new, settings, state)
    except (ValueError, yaml.YAMLError) as e:
        module.fail_json(msg="%s: %s; nothing written" % (path, to_native(e)))

    result = dict(changed=False, path=path, commented_out=found)
    if new != old and (exists or state == "present"):
        result["changed"] = True
        if module._diff:
            result["diff"] = dict(before=old, after=new, before_header=path, after_header=path)
        if not module.check_mode:
            if module.params["backup"] and exists:
                result["backup_file"] = module.backup_local(path)
            directory = os.path.dirname(path) or "."
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            fd, tmp = tempfile.mkstemp(prefix=".storm_yaml_settings.", dir=directory)
            with os.fdopen(fd, "wb") as f:
                f.write(to_bytes(new))
            module.atomic_move(tmp, path, unsafe_writes=module.params["unsafe_writes"])

    if os.path.exists(path) and not module.check_mode:
        file_args = module.load_file_common_arguments(module.params)
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
