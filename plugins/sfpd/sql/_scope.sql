{#- Date predicates with literal bounds (on BigQuery they prune the raw table's partitions).
    Import "with context": they read ranges (the scope's runs of dates: a window's one, a
    reload's several), window_start, window_end (a window's) and dates. -#}
{% macro in_window(column="incident_date") -%}
{%- if ranges | length == 1 %}{{ between(column, *ranges[0]) }}
{%- else %}({% for start, end in ranges %}({{ between(column, start, end) }}){{ " OR " if not loop.last }}{% endfor %})
{%- endif %}
{%- endmacro %}

{% macro between(column, start, end) -%}
{{ column }} >= DATE '{{ start }}' AND {{ column }} < DATE '{{ end }}'
{%- endmacro %}

{#- Rows on any of the days (ISO dates); FALSE for none. -#}
{% macro in_dates(column, days) -%}
{%- if days %}{{ column }} IN (
{%- for day in days %}DATE '{{ day }}'{{ ", " if not loop.last }}{% endfor %})
{%- else %}FALSE{% endif %}
{%- endmacro %}

{#- The partitions a MERGE may touch: the scope's, and those holding the staged row_ids now
    (moved_dates.sql); FALSE when there are none. -#}
{% macro target(column="incident_date") -%}
{%- if ranges %}({{ in_window(column) }}){% endif %}
{%- if ranges and dates %} OR {% endif %}
{%- if dates or not ranges %}{{ in_dates(column, dates) }}{% endif %}
{%- endmacro %}

{#- The window's bounds as two values for a row (NULL, NULL for a catch-up or a reload of days). -#}
{% macro window_values() -%}
{%- if window_start %}DATE '{{ window_start }}', DATE '{{ window_end }}'{% else %}NULL, NULL{% endif %}
{%- endmacro %}
