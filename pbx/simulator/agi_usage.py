# ruff: noqa: E501  (verbatim protocol text is kept on one line per wire line)
"""Usage texts that Asterisk sends in its ``520`` answers (bad command syntax).

The entries marked "captured" are verbatim from ``agi/errors-510-520.txt``. The others were not
captured; they are written from Asterisk 20's AGI documentation so the multi-line framing is
there, but their wording may differ slightly from a real PBX.
"""

from __future__ import annotations

__all__ = ["USAGE"]

USAGE: dict[str, str] = {
    # captured
    "stream file": (
        "Send the given file, allowing playback to be interrupted by the given digits, if any. Returns <literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was disconnected. If musiconhold is playing before calling stream file it will be automatically stopped and will not be restarted after completion.\n"
        "It sets the following channel variables upon completion:\n"
        "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
        "    <value>SUCCESS</value>\n"
        "    <value>FAILED</value>\n"
    ),
    # captured
    "get variable": (
        "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. Returns <literal>1</literal> if <replaceable>variablename</replaceable> is set and returns the variable in parentheses.\n"
        "Example return code: 200 result=1 (testvariable)\n"
    ),
    # captured
    "set variable": "Sets a variable to the current channel.\n",
    # captured
    "get full variable": (
        "Evaluates the given <replaceable>expression</replaceable> against the channel specified by <replaceable>channelname</replaceable>, or the current channel if <replaceable>channelname</replaceable> is not provided.\n"
        "Unlike GET VARIABLE, the <replaceable>expression</replaceable> is processed in a manner similar to dialplan evaluation, allowing complex and built-in variables to be accessed, e.g. <literal>The time is ${EPOCH}</literal>\n"
        "Returns <literal>0</literal> if no channel matching <replaceable>channelname</replaceable> exists, <literal>1</literal> otherwise.\n"
        "Example return code: 200 result=1 (The time is 1578493800)\n"
    ),
    # captured
    "exec": (
        "Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.\n"
        "Returns whatever the <replaceable>application</replaceable> returns, or <literal>-2</literal> on failure to find <replaceable>application</replaceable>.\n"
        "<note>NOTE:</note> exec does not evaluate dialplan functions and variables unless it is explicitly enabled by setting the <variable>AGIEXECFULL</variable> variable to <literal>yes</literal>.\n"
    ),
    "verbose": (
        "Sends <replaceable>message</replaceable> to the console via verbose message system. "
        "<replaceable>level</replaceable> is the verbose level (1-4). Always returns <literal>1</literal>.\n"
    ),
    "channel status": (
        "Returns the status of the specified <replaceable>channelname</replaceable>. If no channel name "
        "is given then returns the status of the current channel.\n"
        "Return values:\n"
        "<literal>0</literal> - Channel is down and available.\n"
        "<literal>1</literal> - Channel is down, but reserved.\n"
        "<literal>2</literal> - Channel is off hook.\n"
        "<literal>3</literal> - Digits (or equivalent) have been dialed.\n"
        "<literal>4</literal> - Line is ringing.\n"
        "<literal>5</literal> - Remote end is ringing.\n"
        "<literal>6</literal> - Line is up.\n"
        "<literal>7</literal> - Line is busy.\n"
    ),
}
