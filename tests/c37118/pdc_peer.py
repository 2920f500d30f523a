#!/usr/bin/env python3
"""A PDC written with pyc37 (an independent C37.118 implementation) as a peer of
`koopstream pmu-serve`: it connects, turns data off, asks for the header and CFG-2, turns
data on, receives COUNT data frames and prints one JSON document on stdout:

    {"header": str, "idcode": int, "data_rate": int, "time_base": int,
     "stations": [str], "idcodes": [int], "channels": [[str]],
     "frames": [{"time": float, "pmus": [{"status": str, "phasors": [[mag, angle]],
                 "freq_hz": float, "rocof": float, "analogs": [float]}]}]}

Values are in engineering units by the standard's (2011) rules, applied here where pyc37
leaves them raw: FREQ (float: Hz; integer: nominal + mHz / 1000), DFREQ (integer: / 100),
integer analogs (value = integer * ANUNIT * 1e-5, the convention pmu-serve documents).
Phasors are pyc37's own polar conversion (PHUNIT * 1e-5 per bit for integers). A lost
value (NaN) is printed as null.

Usage: pdc_peer.py HOST PORT IDCODE COUNT
"""

import ast
import json
import logging
import math
import struct
import sys

from pyc37.frame import CommonFrame, DataFrame
from pyc37.pdc import Pdc


def freq2int_2011(freq, data_format):
    """pyc37 reads a float FREQ as the 2005 deviation from nominal and refuses anything
    outside +-32.767 Hz when it builds a decoded frame; C37.118.2-2011 sends the actual
    frequency, so the float word is kept as it is (integer FREQ goes to pyc37 unchanged)."""
    if isinstance(data_format, int):
        data_format = DataFrame._int2format(data_format)
    if data_format[3]:
        return struct.unpack("!I", struct.pack("!f", float(freq)))[0]
    return PYC37_FREQ2INT(freq, data_format)


PYC37_FREQ2INT = DataFrame._freq2int
DataFrame._freq2int = staticmethod(freq2int_2011)


def read_frame(sock):
    """One whole frame off the byte stream: SYNC and FRAMESIZE first, then the rest.

    Pdc.get reads whatever the socket holds and drops frames that arrive together,
    which a server streaming as fast as it can does; this reads exactly one frame."""
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            raise EOFError("the server closed the connection")
        data += chunk
    size = int.from_bytes(data[2:4], byteorder="big")
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the server closed the connection")
        data += chunk
    return data


def per_pmu(value, num_pmu):
    """pyc37 gives a single PMU's fields bare and several PMUs' fields as lists."""
    return value if num_pmu > 1 else [value]


def finite(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def main():
    host, port, idcode, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    # pyc37 logs to stdout; stdout is for the JSON document.
    Pdc.logger.handlers.clear()
    Pdc.logger.addHandler(logging.StreamHandler(sys.stderr))

    pdc = Pdc(pdc_id=idcode, pmu_ip=host, pmu_port=port)
    pdc.run()
    if pdc.pmu_socket is None:
        sys.exit("cannot connect")
    pdc.pmu_socket.settimeout(20)
    pdc.stop()
    header = pdc.get_header()
    config = pdc.get_config("cfg2")
    pdc.start()

    num_pmu = config.get_num_pmu()
    formats = per_pmu(config.get_data_format(), num_pmu)
    nominal = per_pmu(config.get_fnom(), num_pmu)
    analog_units = per_pmu(config.get_analog_units(), num_pmu)
    frames = []
    while len(frames) < count:
        frame = CommonFrame.convert2frame(read_frame(pdc.pmu_socket), config)
        if not isinstance(frame, DataFrame):
            continue
        stats = per_pmu(frame.get_stat(), num_pmu)
        phasors = per_pmu(frame.get_phasors(), num_pmu)
        freqs = per_pmu(frame.get_freq(), num_pmu)
        dfreqs = per_pmu(frame.get_dfreq(), num_pmu)
        analogs = per_pmu(frame.get_analog(), num_pmu)
        pmus = []
        for i in range(num_pmu):
            # Format tuple: (polar, phasor float, analog float, freq float).
            _, _, analog_float, freq_float = formats[i]
            freq_hz = freqs[i] if freq_float else nominal[i] + freqs[i] / 1000.0
            rocof = dfreqs[i] if freq_float else dfreqs[i] / 100.0
            values = [
                a if analog_float else a * unit[0] * 1e-5 for a, unit in zip(analogs[i], analog_units[i])
            ]
            pmus.append({
                "status": stats[i][0],
                "phasors": [[finite(m), finite(a)] for m, a in phasors[i]],
                "freq_hz": finite(freq_hz),
                "rocof": finite(rocof),
                "analogs": [finite(v) for v in values],
            })
        frames.append({"time": frame.get_soc() + frame.get_frasec()[0] / config.get_time_base(), "pmus": pmus})
    pdc.stop()
    pdc.quit()

    channels = per_pmu(config.get_channel_names(), num_pmu)
    # pyc37 keeps the header as the repr of its bytes.
    text = header.get_header()
    if text.startswith(("b'", 'b"')):
        text = ast.literal_eval(text).decode("ascii", errors="replace")
    document = {
        "header": text,
        "idcode": config.get_id_code(),
        "data_rate": config.get_data_rate(),
        "time_base": config.get_time_base(),
        "stations": [s.strip() for s in per_pmu(config.get_station_name(), num_pmu)],
        "idcodes": per_pmu(config.get_stream_id_code(), num_pmu),
        "channels": [[c.strip() for c in names] for names in channels],
        "frames": frames,
    }
    json.dump(document, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
