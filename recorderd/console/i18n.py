"""The console's words, in Japanese (the default) and English. A missing key is a bug: a test walks
every template and checks each key it uses exists in both languages."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["LANGUAGES", "MESSAGES", "translator"]

LANGUAGES = ("ja", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    # key: (日本語, English)
    "title": ("通話録音コンソール", "Call recording console"),
    "sign_in": ("サインイン", "Sign in"),
    "sign_out": ("サインアウト", "Sign out"),
    "person_id": ("職員ID", "Personal ID"),
    "password": ("パスワード", "Password"),
    "new_password": ("新しいパスワード", "New password"),
    "new_password_again": ("新しいパスワード(確認)", "New password again"),
    "change_password": ("パスワードを変更", "Change password"),
    "must_change": (
        "パスワードの変更が必要です。現在のパスワードと新しいパスワードを入力してください。",
        "Your password must be changed: give the current one and a new one.",
    ),
    "password_changed": (
        "パスワードを変更しました。新しいパスワードでサインインしてください。",
        "Password changed: sign in with the new one.",
    ),
    "passwords_differ": ("新しいパスワードが一致しません", "The two new passwords differ"),
    "session_ended": (
        "セッションが終了しました。もう一度サインインしてください。",
        "Your session ended: sign in again.",
    ),
    "search": ("通話検索", "Search calls"),
    "date_from": ("開始日", "From"),
    "date_to": ("終了日", "To"),
    "number": ("電話番号", "Number"),
    "line": ("回線", "Line"),
    "direction": ("方向", "Direction"),
    "inbound": ("着信", "Inbound"),
    "outbound": ("発信", "Outbound"),
    "status": ("状態", "Status"),
    "held": ("保全", "Hold"),
    "held_yes": ("保全中のみ", "Held only"),
    "held_no": ("保全なしのみ", "Not held only"),
    "any": ("指定なし", "Any"),
    "find": ("検索", "Search"),
    "results": ("検索結果", "Results"),
    "no_results": ("該当する通話はありません", "No call matches"),
    "started": ("開始(東京)", "Started (Tokyo)"),
    "remote": ("相手番号", "Counterpart"),
    "local": ("当方番号", "City side"),
    "duration": ("通話時間", "Duration"),
    "seconds": ("秒", "s"),
    "prev_page": ("前へ", "Previous"),
    "next_page": ("次へ", "Next"),
    "page": ("ページ", "Page"),
    "call": ("通話", "Call"),
    "call_id": ("通話ID", "Call ID"),
    "retention": ("保存期限", "Kept until"),
    "retention_rule": ("保存の根拠", "Retention rule"),
    "forever": ("期限なし", "No end date"),
    "holds": ("保全", "Holds"),
    "no_holds": ("保全はありません", "No hold"),
    "hold_kind": ("種別", "Kind"),
    "reference": ("整理番号", "Reference"),
    "reason": ("理由", "Reason"),
    "placed": ("設定", "Placed"),
    "released": ("解除", "Released"),
    "add_hold": ("保全を設定", "Place a hold"),
    "ledger": ("操作記録", "Ledger"),
    "at": ("日時", "When"),
    "kind": ("種類", "Kind"),
    "actor": ("操作者", "By"),
    "detail": ("内容", "Detail"),
    "play": ("再生", "Play"),
    "purpose": ("再生の目的", "Purpose"),
    "key_password": ("鍵のパスワード(あなたのパスワード)", "Key password (your password)"),
    "play_note": (
        "録音はこのブラウザの中で復号されます。サーバーは暗号文だけを渡し、再生は操作記録に残ります。",
        "The recording is decrypted in this browser. "
        "The server hands out ciphertext only, and the playback is ledgered.",
    ),
    "no_raw_play": (
        "この設定では録音をそのまま再生できません。指示に基づく複製(書き出し)の手続によってください。",
        "This profile lets no one hear raw recordings: use the export flow on an instruction.",
    ),
    "back5": ("5秒戻る", "Back 5 s"),
    "fwd5": ("5秒進む", "Forward 5 s"),
    "speed": ("速度", "Speed"),
    "pause": ("一時停止", "Pause"),
    "integrity_ok": ("暗号文のSHA-256は台帳と一致しました", "The ciphertext's SHA-256 matches the catalogue"),
    "integrity_bad": (
        "警告: 暗号文のSHA-256が台帳と一致しません(改ざんまたは破損の可能性)",
        "Warning: the ciphertext's SHA-256 does not match the catalogue (tampered or damaged)",
    ),
    "wrong_key_password": (
        "鍵を開けられません: パスワードが違います",
        "The key copy does not open: wrong password",
    ),
    "decrypt_failed": ("復号できませんでした", "Decryption failed"),
    "refused": ("実行できません", "Refused"),
    "error": ("エラー", "Error"),
    "users": ("職員管理", "People"),
    "status_page": ("稼働状況", "Status"),
    "verify": ("検証する", "Verify"),
    "verified_ok": ("操作記録の連鎖は正常です", "The ledger's chain is intact"),
    "verified_bad": ("操作記録に問題があります", "The ledger has problems"),
    "entries_checked": ("検証した件数", "Entries checked"),
    "newest_checkpoint": ("最新の署名チェックポイント", "Newest signed checkpoint"),
    "no_checkpoint": ("署名チェックポイントはまだありません", "No signed checkpoint yet"),
    "hours_ago": ("時間前", "hours ago"),
    "filter": ("絞り込み", "Filter"),
    "subject": ("対象者", "Subject"),
    "daemon": ("録音デーモン", "Recorder daemon"),
    "running": ("稼働中", "running"),
    "down": ("停止", "DOWN"),
    "health": ("健全性", "Health"),
    "pbx_link": ("PBX接続(AMI)", "PBX link (AMI)"),
    "live_calls": ("通話中", "Calls in progress"),
    "disk": ("ディスク", "Disk"),
    "free_of": ("空き / 全体", "free / total"),
    "open_alerts": ("未解決の警報", "Open alerts"),
    "none": ("なし", "none"),
    "refreshes": ("10秒ごとに自動更新", "Refreshes itself every 10 s"),
    "name": ("氏名", "Name"),
    "role": ("役割", "Role"),
    "key_copy": ("鍵の写し", "Key copy"),
    "state": ("状態", "State"),
    "disable": ("無効にする", "Disable"),
    "unlock": ("ロック解除", "Unlock"),
    "add_person": ("職員を追加", "Add a person"),
    "first_password": ("初期パスワード", "First password"),
    "your_password": ("あなたのパスワード(鍵の写しを作るため)", "Your password (to copy the key)"),
    "release": ("解除", "Release"),
    "release_reason": ("解除の理由", "Reason for release"),
    "language": ("English", "日本語"),
    "signed_in_as": ("サインイン中", "Signed in as"),
    "csrf_failed": ("フォームの有効期限が切れました。やり直してください。", "The form expired: try again."),
    "audio_deleted": ("録音は削除済みです", "The recording has been deleted"),
    "unlocking": ("鍵を開けています…", "Opening the key…"),
    "decrypting": ("復号しています…", "Decrypting…"),
}


def translator(lang: str) -> Callable[[str], str]:
    index = 1 if lang == "en" else 0

    def t(key: str) -> str:
        return MESSAGES[key][index]

    return t
