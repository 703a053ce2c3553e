"""`edgehound devices`: the device profiles and this host."""

from __future__ import annotations

import json


def cmd_devices(args) -> int:
    from edgehound.devices.profiles import all_profiles, detect, get_profile

    if args.devices_command == "list":
        for name, p in all_profiles().items():
            print(f"{name:<18} {p['arch']:<10} {', '.join(p['formats']):<55} {p['reach']['kind']:<6} {p['description']}")
    elif args.devices_command == "show":
        print(json.dumps(get_profile(args.name), indent=2))
    else:
        print(json.dumps(detect(), indent=2))
    return 0


def add_commands(sub) -> None:
    """`devices list | show | detect`."""
    dv = sub.add_parser("devices", help="device profiles: list, show, detect this host",
                        description="Device profiles (devices/profiles/*.toml): architecture, the formats it runs, "
                        "the TVM target and cross compiler of its TVM format, and how to reach the device.")
    dvs = dv.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    dvs.add_parser("list", help="one line per profile").set_defaults(func=cmd_devices)
    show = dvs.add_parser("show", help="one profile in full")
    show.add_argument("name")
    show.set_defaults(func=cmd_devices)
    dvs.add_parser("detect", help="this host as a profile").set_defaults(func=cmd_devices)
