{#- Date predicates with literal bounds (on BigQuery they prune the raw table's partitions).
    Import "with context": they read window_start, window_end and dates. -#}
{% macro in_window(column="incident_date") -%}
{{ column }} >= DATE '{{ window_start }}' AND {{ column }} < DATE '{{ window_end }}'
{%- endmacro %}

{#- Rows on any of the days (ISO dates); FALSE for none. -#}
{% macro in_dates(column, days) -%}
{%- if days %}{{ column }} IN (
{%- for day in days %}DATE '{{ day }}'{{ ", " if not loop.last }}{% endfor %})
{%- else %}FALSE{% endif %}
{%- endmacro %}

{#- The partitions a MERGE may touch: the window's, and those holding the staged row_ids now
    (moved_dates.sql); FALSE when there are none. -#}
{% macro target(column="incident_date") -%}
{%- if window_start %}({{ in_window(column) }}){% endif %}
{%- if window_start and dates %} OR {% endif %}
{%- if dates or not window_start %}{{ in_dates(column, dates) }}{% endif %}
{%- endmacro %}

{#- The window's bounds as two values for a row (NULL, NULL for a catch-up). -#}
{% macro window_values() -%}
{%- if window_start %}DATE '{{ window_start }}', DATE '{{ window_end }}'{% else %}NULL, NULL{% endif %}
{%- endmacro %}
