"""Every word the report and the terminal summaries show a person, in English and Japanese: page
texts, column headers, carrier, reason, status and scope names, the `cli.*` words of the
terminal summaries of `suppress`, `suppression list|show` and `clean`, and terminal widths.

Reads nothing, writes nothing. `labels(lang)` returns a Labels object; the HTML page
(pipeline.report.html), the CSV writer (pipeline.report.csvfiles), the charts
(pipeline.report.charts) and the CLI's terminal summaries (pipeline.cli.report, .suppression,
.clean) take their words from it, so one language choice (`--lang`, `report.lang`) changes them all. Values in the CSV files stay
codes (`docomo`, `user_unknown`) so scripts and pivots keep working; only headers change.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from ..core.errors import InputError

LANGS: tuple[str, ...] = ("en", "ja")

# column -> (English header, Japanese header). English headers of the CSV files are the column
# names themselves (what scripts read); the English HTML shows the words on the left.
COLUMNS: dict[str, tuple[str, str]] = {
    "period_start": ("from", "開始日"),
    "period_end": ("to", "終了日"),
    "day": ("day", "日付"),
    "hour": ("hour", "時"),
    "carrier": ("carrier", "キャリア"),
    "attempts": ("attempts", "配信試行"),
    "delivered": ("delivered", "配信成功"),
    "deferred": ("deferred", "一時エラー"),
    "bounced": ("bounced", "バウンス"),
    "expired": ("expired", "期限切れ"),
    "undeliverable": ("undeliverable", "配信不能"),
    "finished": ("finished", "結果確定"),
    "recipients": ("recipients", "宛先数"),
    "counted_errors": ("counted errors", "計上エラー"),
    "hard_bounces": ("hard bounces", "ハードバウンス"),
    "unknown_user": ("unknown user", "宛先不明"),
    "filtered": ("filtered", "受信拒否設定"),
    "bounce_rate": ("bounce rate", "バウンス率"),
    "unknown_user_rate": ("unknown-user rate", "宛先不明率"),
    "reason": ("reason", "理由"),
    "scope": ("whose side", "原因の所在"),
    "failed": ("failed", "失敗"),
    "share_of_carrier": ("share of carrier", "キャリア内の割合"),
    "domain": ("domain", "ドメイン"),
    "failure_rate": ("failure rate", "失敗率"),
    "failed_recipients": ("failed recipients", "失敗した宛先数"),
    "top_reason": ("top reason", "主な理由"),
    "events": ("events", "件数"),
    "carrier_attempts": ("carrier attempts", "キャリアへの試行"),
    "share_of_attempts": ("share of attempts", "試行に占める割合"),
    "top_reply": ("top reply", "主な応答"),
    "added": ("added", "追加"),
    "added_by_rule": ("added by rule", "ルールによる追加"),
    "released": ("released", "解除"),
    "net_change": ("net change", "増減"),
    "list_size": ("list size", "リスト件数"),
    "refused": ("refused", "拒否"),
    "rate_limited": ("rate limited", "流量制限"),
    "on_the_hour_attempts": ("on-the-hour attempts", "正時直後の試行"),
    "on_the_hour_refused": ("on-the-hour refused", "正時直後の拒否"),
    "refusal_rate": ("refusal rate", "拒否率"),
    "filtered_recipients": ("filtered recipients", "拒否された宛先数"),
    "alert": ("alert", "警告"),
}

CARRIER_NAMES_JA = {
    "docomo": "ドコモ", "au": "au", "softbank": "ソフトバンク", "ymobile": "ワイモバイル",
    "rakuten": "楽天モバイル", "other": "その他", "unknown": "不明", "all": "全体",
}

REASON_NAMES_JA = {
    "delivered": "配信済み", "content": "内容による拒否", "rate_limited": "流量制限",
    "mailbox_full": "容量超過", "mesg_too_big": "サイズ超過", "too_many_recipients": "宛先数超過",
    "mailbox_disabled": "利用停止中", "auth": "送信認証の失敗", "blocked": "ブロック",
    "spam": "迷惑メール判定", "sender_domain": "送信ドメイン", "syntax": "書式誤り",
    "filtered": "受信拒否設定", "user_unknown": "宛先不明", "host_unknown": "ドメイン不明",
    "policy": "ポリシー", "network": "ネットワーク", "system": "受信側の障害",
    "expired": "期限切れ", "undefined": "不明",
}

STATUS_NAMES_JA = {"sent": "配信成功", "deferred": "一時エラー", "bounced": "バウンス", "expired": "期限切れ",
                   "undeliverable": "配信不能"}

SCOPE_NAMES_JA = {"recipient": "宛先側", "sender": "送信側（当方）", "network": "ネットワーク",
                  "unknown": "不明", "none": "なし"}

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "html_lang": "en",
        "page_title": "mailhygiene report {period}",
        "heading": "mailhygiene delivery report",
        "period": "Period: <b>{period}</b>{asked}, calendar days in {tz}",
        "asked": " (asked: {since} .. {until})",
        "start": "start", "end": "end",
        "generated": "Generated: {at} by mailhygiene {version}",
        "alert": "Unknown-user rate over {limit}: {items}",
        "key_figures": "Key figures",
        "chart.bounce_rate_by_carrier": "Bounce rate per carrier",
        "chart.reasons_by_carrier": "Reasons per carrier",
        "chart.hourly_by_carrier": "Attempts and refusals per hour of the day",
        "chart.suppression_growth": "Suppression list growth",
        "title.carrier_totals": "Per carrier over the period",
        "title.carrier_weekly": "Per carrier and week (Monday to Sunday)",
        "title.carrier_daily": "Per carrier and day, by week",
        "title.reasons_by_carrier": "Why attempts did not deliver, per carrier",
        "title.top_failing_domains": "Top failing recipient domains",
        "title.sender_problems_daily": "Problems on our side (scope = sender) per carrier and day",
        "title.filtered_daily": "Reception-filter refusals per carrier and day",
        "title.carrier_hourly": "Per carrier and hour of the day",
        "title.suppression_growth": "Suppression list growth",
        "note.sender_problems_daily": "never counted against addresses",
        "note.filtered_daily": ("the customer's handset settings (docomo/au/SoftBank 指定受信・迷惑メール設定) "
                                "refuse our domain; the address is alive and never suppressed. "
                                "Ask these customers to allow the sending domain: "),
        "note.filtered_link": "template notice (Japanese)",
        "note.carrier_hourly": "local hours; on the hour = the first {minutes} minutes of each hour",
        "rows": "{n} row(s); also {csv}",
        "note_end": "; ",
        "none": "(none)",
        "week": "Week {start} .. {end}",
        "week_summary": "{attempts} attempts, bounce rate {rate}",
        "week_rows": "{n} row(s)",
        "definitions": "Definitions",
        "chart_title.bounce_rate": "Bounce rate per carrier ({grain})",
        "grain.day": "daily", "grain.week": "weekly",
        "chart.bounce_rate_ylabel": "(bounced + expired + undeliverable) / finished",
        "chart.no_finished": "no finished deliveries in this period",
        "chart.reasons_title": "Why attempts did not deliver, per carrier",
        "chart.reasons_xlabel": "undelivered attempts",
        "chart.all_delivered": "every attempt in this period was delivered",
        "chart.growth_title": "Suppression list",
        "chart.growth_added": "added", "chart.growth_released": "released",
        "chart.growth_size": "list size", "chart.growth_ylabel": "entries per day",
        "chart.growth_none": "no suppression entries yet",
        "chart.growth_outside": "no list changes in this period (list size {size})",
        "chart.growth_after": "after the period: {added} added, {released} released (last on {last})",
        "chart.hourly_title": "Attempts and refusals per hour of the day ({tz})",
        "chart.hourly_attempts": "attempts", "chart.hourly_on_the_hour": "first {minutes} min of the hour",
        "chart.hourly_refused": "refused (our side)", "chart.hourly_xlabel": "hour of the day",
        "chart.hourly_rate": "refusal rate",
        "chart.hourly_none": "no attempts in this period",
        "chart.hourly_detail": ("{attempts} attempts ({share} on the hour), "
                                "{refused} refused = {rate} ({r_share} on the hour)"),
        "term.period": "period: {first} .. {last} ({tz} days)",
        "term.over": "  << over",
        "term.report": "report: {path}",
        "term.files": "tables: {csv} CSV, charts: {png} PNG in {folder}",
        "term.alert": "ALERT: {carrier} unknown-user rate {rate} is over {limit}",
        "term.warning": "warning: {text}",
        # the terminal summaries of `suppress`, `suppression list|show` and `clean` (pipeline.cli)
        "cli.rule": "rule",
        "cli.rule_value": ("{min_errors}+ counted errors on {min_days}+ days within {window_days} days "
                           "({tz}), up to {as_of}"),
        "cli.marked": "addresses marked",
        "cli.marked_value": "{marked} ({listed} already listed)",
        "cli.new": "new entries",
        "cli.new_value": "{n}  [{mode}]",
        "cli.mode.dry_run": "dry run: nothing written",
        "cli.mode.applied": "applied",
        "cli.mode.nothing": "nothing to add",
        "cli.entry_evidence": "{errors} errors on {days} days, {first} .. {last}",
        "cli.guard": "guard",
        "cli.guard_unchecked": "not checked in a dry run (add --check-guard)",
        "cli.guard_forced": "guard (overridden by --force)",
        "cli.guard_refuses": "guard WOULD refuse this run",
        "cli.guard_overridden": "suppress: the guard's objections were overridden by --force:",
        "cli.list_count": "{n} suppressed address(es)",
        "cli.list_shown": ", the first {n} shown (--limit 0: all)",
        "cli.list_added": "added {at}",
        "cli.note": "note: {note}",
        "cli.not_suppressed": "{address}: not suppressed",
        "cli.suppressed": "{address}: SUPPRESSED ({source}) since {at}",
        "cli.evidence": ("carrier {carrier}, reasons {reasons}: {errors} counted errors on {days} days, "
                         "{first} .. {last}"),
        "cli.last_reply": "last reply: dsn {dsn} {reply}",
        "cli.rule_label": "rule: {rule}",
        "cli.history": "history: {at} {action}",
        "cli.attempts": "delivery attempts: {n}",
        "cli.counted_legend": "(* = counted error)",
        "cli.counted_legend_hops": "(* = counted error, > = handed on to another hop: no delivery, = = a bounce mail repeating a logged attempt)",
        "cli.unbound_legend": "(? = a bounce mail bound to no mail we sent: unbound, no mail of ours to this "
                              "address; kept, not counted)",
        "cli.source.rule": "rule", "cli.source.manual": "manual",
        "cli.action.added": "added", "cli.action.released": "released",
        "cli.added": "added {address}",
        "cli.added_many": "added {n} address(es)",
        "cli.skipped_listed": "skipped {n} already listed: {examples}",
        "cli.released": "released {address}",
        "cli.ingest": "== ingest {path}",
        "cli.ingest_watch": "== ingest skipped: a live `mailhygiene watch` owns log ingestion for this data dir",
        "cli.ingest_sender_only": "== ingest skipped: no [[sources]]; the send daemon's own results are the events",
        "cli.ingest_no_files": "== ingest {path}: no files match (skipped)",
        "cli.ingest_summary": ("{files} file(s), {lines} lines read, {events} events written, "
                               "{stored} already stored, {rejected} lines rejected"),
        "cli.problem_no_files": "ingest {path}: no files match (check [[sources]] path)",
        "cli.problem_new_data_dir": ("clean: {path} held no events and no suppression list: a new store and list "
                                     "were started there. Expected on the first night; otherwise that data dir "
                                     "is not mounted or has moved: stop the timer and restore it (the addresses "
                                     "added by hand live only there)"),
        "cli.problem_new_list": ("suppression add: {path} held no events and no suppression list: a new list was "
                                 "started there. Expected on a new install; otherwise check --data-dir and the "
                                 "config: the nightly job and the sender read only their own data_dir's list"),
        "cli.problem_rejected": "ingest {path}: {n} lines rejected ({reasons})",
        "cli.problem_samples": "; samples in {file}",
        "cli.problem_unrecognised": ("ingest {path}: not recognised as Postfix, sendmail or qmail "
                                     "(set format in [[sources]]): {files}"),
        "cli.sender_events": "== sender: {n} event row(s) of the send daemon moved from the queue into the event store",
        "cli.suppress": "== suppress",
        "cli.export": "== export",
        "cli.export_path": "suppression CSV: {path}",
        "cli.report": "== report",
        "cli.report_path": "report: {path}",
        "cli.lake": "== lake",
        "cli.lake_uploaded": "uploaded {files} file(s), {bytes:,} bytes ({already} already there)",
    },
    "ja": {
        "html_lang": "ja",
        "page_title": "mailhygiene 配信レポート {period}",
        "heading": "mailhygiene 配信レポート",
        "period": "対象期間: <b>{period}</b>{asked}（{tz} の暦日）",
        "asked": "（指定: {since} 〜 {until}）",
        "start": "最初", "end": "最後",
        "generated": "作成: {at}（mailhygiene {version}）",
        "alert": "宛先不明率が {limit} を超えています: {items}",
        "key_figures": "主要指標",
        "chart.bounce_rate_by_carrier": "キャリア別バウンス率",
        "chart.reasons_by_carrier": "キャリア別の不達理由",
        "chart.hourly_by_carrier": "時間帯別の配信試行と拒否",
        "chart.suppression_growth": "配信停止リストの推移",
        "title.carrier_totals": "キャリア別（期間合計）",
        "title.carrier_weekly": "キャリア別・週別（月曜〜日曜）",
        "title.carrier_daily": "キャリア別・日別（週ごとに折りたたみ）",
        "title.reasons_by_carrier": "キャリア別の不達理由",
        "title.top_failing_domains": "失敗の多い宛先ドメイン",
        "title.sender_problems_daily": "送信側（当方）の問題: キャリア別・日別",
        "title.filtered_daily": "受信拒否設定による拒否: キャリア別・日別",
        "title.carrier_hourly": "キャリア別・時間帯別",
        "title.suppression_growth": "配信停止リストの推移",
        "note.sender_problems_daily": "宛先のエラーとしては計上しません",
        "note.filtered_daily": ("お客様の端末側の設定（ドコモ・au・ソフトバンクの指定受信／迷惑メール設定）が"
                                "当方のドメインを拒否しています。宛先は有効なので配信停止にはしません。"
                                "送信ドメインの受信許可をお客様にご案内ください: "),
        "note.filtered_link": "案内文のひな形",
        "note.carrier_hourly": "現地時刻。正時直後 = 毎時 0 分から {minutes} 分間",
        "rows": "{n} 行（{csv} にも出力）",
        "note_end": "。",
        "none": "（なし）",
        "week": "{start} 〜 {end} の週",
        "week_summary": "配信試行 {attempts} 件、バウンス率 {rate}",
        "week_rows": "{n} 行",
        "definitions": "用語の定義",
        "chart_title.bounce_rate": "キャリア別バウンス率（{grain}）",
        "grain.day": "日別", "grain.week": "週別",
        "chart.bounce_rate_ylabel": "（バウンス＋期限切れ＋配信不能）÷ 結果確定",
        "chart.no_finished": "この期間に結果の確定した配信はありません",
        "chart.reasons_title": "キャリア別の不達理由",
        "chart.reasons_xlabel": "不達の配信試行（件）",
        "chart.all_delivered": "この期間の配信はすべて成功しました",
        "chart.growth_title": "配信停止リスト",
        "chart.growth_added": "追加", "chart.growth_released": "解除",
        "chart.growth_size": "リスト件数", "chart.growth_ylabel": "1 日あたりの件数",
        "chart.growth_none": "配信停止リストはまだありません",
        "chart.growth_outside": "この期間にリストの変更はありません（リスト件数 {size}）",
        "chart.growth_after": "期間後: 追加 {added} 件、解除 {released} 件（最終 {last}）",
        "chart.hourly_title": "時間帯別の配信試行と拒否（{tz}）",
        "chart.hourly_attempts": "配信試行", "chart.hourly_on_the_hour": "毎時 0〜{last} 分",
        "chart.hourly_refused": "拒否（送信側）", "chart.hourly_xlabel": "時",
        "chart.hourly_rate": "拒否率",
        "chart.hourly_none": "この期間の配信試行はありません",
        "chart.hourly_detail": "試行 {attempts} 件（正時直後 {share}）、拒否 {refused} 件 = {rate}（正時直後 {r_share}）",
        "term.period": "期間: {first} 〜 {last}（{tz} の暦日）",
        "term.over": "  << 超過",
        "term.report": "レポート: {path}",
        "term.files": "表: CSV {csv} 件、グラフ: PNG {png} 件（{folder}）",
        "term.alert": "ALERT: {carrier}の宛先不明率 {rate} が閾値 {limit} を超えています",
        "term.warning": "警告: {text}",
        "cli.rule": "ルール",
        "cli.rule_value": ("{window_days} 日以内の {min_days} 日以上で計上エラー {min_errors} 件以上"
                           "（{tz} の暦日）、{as_of} まで"),
        "cli.marked": "該当アドレス",
        "cli.marked_value": "{marked} 件（うち登録済み {listed} 件）",
        "cli.new": "新規登録",
        "cli.new_value": "{n} 件  [{mode}]",
        "cli.mode.dry_run": "試行のみ: 書き込みなし",
        "cli.mode.applied": "登録しました",
        "cli.mode.nothing": "追加なし",
        "cli.entry_evidence": "エラー {errors} 件・{days} 日、{first} 〜 {last}",
        "cli.guard": "ガード",
        "cli.guard_unchecked": "試行では確認しません（--check-guard で確認）",
        "cli.guard_forced": "ガード（--force で無視）",
        "cli.guard_refuses": "ガードはこの実行を拒否します",
        "cli.guard_overridden": "suppress: ガードの指摘を --force で無視しました:",
        "cli.list_count": "配信停止アドレス {n} 件",
        "cli.list_shown": "（先頭 {n} 件を表示、--limit 0 で全件）",
        "cli.list_added": "登録 {at}",
        "cli.note": "メモ: {note}",
        "cli.not_suppressed": "{address}: 配信停止ではありません",
        "cli.suppressed": "{address}: 配信停止中（{source}）{at} から",
        "cli.evidence": ("キャリア {carrier}、理由 {reasons}: 計上エラー {errors} 件・{days} 日、"
                         "{first} 〜 {last}"),
        "cli.last_reply": "最後の応答: dsn {dsn} {reply}",
        "cli.rule_label": "ルール: {rule}",
        "cli.history": "履歴: {at} {action}",
        "cli.attempts": "配信試行: {n} 件",
        "cli.counted_legend": "（* = 計上エラー）",
        "cli.counted_legend_hops": "（* = 計上エラー、> = 別の中継への受け渡し: 配信ではない、= = ログにある試行を繰り返すバウンスメール）",
        "cli.unbound_legend": "（? = 当方の送信に結び付かないバウンスメール: この宛先への当方の送信なし。保存のみ、計上しない）",
        "cli.source.rule": "ルール", "cli.source.manual": "手動",
        "cli.action.added": "追加", "cli.action.released": "解除",
        "cli.added": "{address} を追加しました",
        "cli.added_many": "{n} 件を追加しました",
        "cli.skipped_listed": "登録済みの {n} 件を省略: {examples}",
        "cli.released": "{address} を解除しました",
        "cli.ingest": "== 取り込み {path}",
        "cli.ingest_watch": "== 取り込みは省略: 稼働中の `mailhygiene watch` がこのデータディレクトリのログを取り込んでいます",
        "cli.ingest_sender_only": "== 取り込みは省略: [[sources]] の設定なし。送信デーモン自身の結果をイベントとして使います",
        "cli.ingest_no_files": "== 取り込み {path}: 一致するファイルなし（省略）",
        "cli.ingest_summary": ("ファイル {files} 件、読み込み {lines} 行、イベント書き込み {events} 件、"
                               "取り込み済み {stored} 件、除外 {rejected} 行"),
        "cli.problem_no_files": "取り込み {path}: 一致するファイルがありません（[[sources]] の path を確認）",
        "cli.problem_new_data_dir": ("clean: {path} にはイベントも配信停止リストもありませんでした。新しく作成しました。"
                                     "初回の実行なら問題ありません。そうでなければデータディレクトリがマウントされていないか"
                                     "移動しています。タイマーを止めて復元してください（手動で追加したアドレスはそこにしかありません）"),
        "cli.problem_new_list": ("suppression add: {path} にはイベントも配信停止リストもありませんでした。新しいリストを"
                                 "作成しました。新規導入なら問題ありません。そうでなければ --data-dir と設定を確認してください"
                                 "（夜間ジョブと送信は自分の data_dir のリストしか読みません）"),
        "cli.problem_rejected": "取り込み {path}: {n} 行を除外（{reasons}）",
        "cli.problem_samples": "。例は {file}",
        "cli.problem_unrecognised": ("取り込み {path}: Postfix・sendmail・qmail のいずれとも判定できません"
                                     "（[[sources]] に format を指定）: {files}"),
        "cli.sender_events": "== 配信: 送信デーモンの結果 {n} 件を送信キューからイベントストアへ移しました",
        "cli.suppress": "== 配信停止ルール",
        "cli.export": "== 書き出し",
        "cli.export_path": "配信停止 CSV: {path}",
        "cli.report": "== レポート",
        "cli.report_path": "レポート: {path}",
        "cli.lake": "== 共有イベントストア",
        "cli.lake_uploaded": "{files} ファイル、{bytes:,} バイトをアップロード（既存 {already} 件）",
    },
}

_DEFINITIONS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("attempts", "every delivery attempt (one log line per recipient), deferrals included"),
        ("finished", "attempts with a final outcome: delivered + bounced + expired + undeliverable"),
        ("bounce rate", "(bounced + expired + undeliverable) / finished"),
        ("unknown-user rate", "finished attempts with reason user_unknown / finished"),
        ("counted errors", "deferred/bounced/expired, scope recipient, reason in rule.counted_reasons "
                           "(what the suppression rule counts)"),
        ("hard bounces", "hard = true and status bounced, expired or undeliverable"),
        ("filtered", "attempts with reason filtered: the recipient's reception filter (handset "
                     "settings) refused our domain; never counted against the address"),
        ("refused", "attempts that did not deliver because the receiver refused us (scope sender: "
                    "rate limits, blocks, reception filters, authentication, policy, spam verdicts)"),
        ("on the hour", "attempts in the first minutes of each hour (毎正時), when docomo and au "
                        "see the most load"),
        ("days", "calendar days in the report's time zone"),
    ],
    "ja": [
        ("配信試行", "配信の試み 1 回（宛先ごとのログ 1 行）。一時エラーによる再試行も含みます"),
        ("結果確定", "最終結果の出た配信試行: 配信成功＋バウンス＋期限切れ＋配信不能"),
        ("バウンス率", "（バウンス＋期限切れ＋配信不能）÷ 結果確定"),
        ("宛先不明率", "理由が宛先不明（user_unknown）の結果確定 ÷ 結果確定"),
        ("計上エラー", "一時エラー・バウンス・期限切れのうち、原因が宛先側で理由が rule.counted_reasons に"
                       "含まれるもの（配信停止ルールが数えるもの）"),
        ("ハードバウンス", "hard = true で、バウンス・期限切れ・配信不能のもの"),
        ("受信拒否設定", "理由が filtered の配信試行: お客様の端末の受信設定（指定受信・迷惑メール設定）が"
                         "当方のドメインを拒否したもの。宛先のエラーとしては数えません"),
        ("拒否", "受信側が当方を拒否したために届かなかった配信試行（原因の所在が送信側: 流量制限、"
                 "ブロック、受信拒否設定、認証、ポリシー、迷惑メール判定）"),
        ("正時直後", "毎時 0 分から数分間の配信試行（毎正時はドコモ・au の負荷が最も高い時間帯）"),
        ("日付", "レポートのタイムゾーンでの暦日"),
    ],
}


@dataclass(frozen=True)
class Labels:
    """The words of one language."""

    lang: str

    def __call__(self, key: str, **values) -> str:
        text = _TEXT[self.lang][key]
        return text.format(**values) if values else text

    def column(self, name: str) -> str:
        """A column's header for people (HTML, terminal): English words or Japanese."""
        en, ja = COLUMNS.get(name, (name, name))
        return ja if self.lang == "ja" else en

    def csv_column(self, name: str) -> str:
        """A column's header in the CSV files: the column name itself in English (what scripts
        read), the Japanese header in Japanese."""
        return COLUMNS.get(name, (name, name))[1] if self.lang == "ja" else name

    def carrier(self, code: str) -> str:
        return CARRIER_NAMES_JA.get(code, code) if self.lang == "ja" else code

    def reason(self, code: str) -> str:
        return REASON_NAMES_JA.get(code, code) if self.lang == "ja" else code

    def status(self, code: str) -> str:
        return STATUS_NAMES_JA.get(code, code) if self.lang == "ja" else code

    def scope(self, code: str) -> str:
        return SCOPE_NAMES_JA.get(code, code) if self.lang == "ja" else code

    @property
    def definitions(self) -> list[tuple[str, str]]:
        return _DEFINITIONS[self.lang]


def labels(lang: str | None) -> Labels:
    lang = lang or "en"
    if lang not in LANGS:
        raise InputError(f"unknown report language {lang!r}: use one of {', '.join(LANGS)}")
    return Labels(lang)


def all_words(lang: str) -> str:
    """Every word of one language in one string (for checking that a font has all the glyphs)."""
    i = LANGS.index(lang)
    parts = list(_TEXT[lang].values()) + [v[i] for v in COLUMNS.values()]
    parts += [k + v for k, v in _DEFINITIONS[lang]]
    if lang == "ja":
        parts += [*CARRIER_NAMES_JA.values(), *REASON_NAMES_JA.values(), *SCOPE_NAMES_JA.values(),
                  *STATUS_NAMES_JA.values()]
    return "".join(parts)


def display_width(text: str) -> int:
    """Columns a text takes in a terminal: East Asian wide and full-width characters take two."""
    if text.isascii():  # addresses and most cells: one column each, no per-character lookup
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def pad(text: str, width: int, align: str = "<") -> str:
    """`text` padded with spaces to `width` terminal columns (align '<' left, '>' right)."""
    space = " " * max(0, width - display_width(text))
    return text + space if align == "<" else space + text
