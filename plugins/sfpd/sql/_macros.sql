{#- Column-list helpers shared by the dialects' statements. `columns` is [(name, type), ...]. -#}
{% macro names(columns, prefix="") -%}
{%- for name, _ in columns %}
    {{ prefix }}{{ name }}{{ "," if not loop.last }}
{%- endfor %}
{%- endmacro %}

{% macro definitions(columns) -%}
{%- for name, type in columns %}
    {{ name }} {{ type }}{{ "," if not loop.last }}
{%- endfor %}
{%- endmacro %}

{% macro assignments(columns) -%}
{%- for name, _ in columns %}
    {{ name }} = source.{{ name }},
{%- endfor %}
{%- endmacro %}

{#- True when a matched row differs in any column (NULL-safe). -#}
{% macro changed(columns) -%}
NOT (
{%- for name, _ in columns %}
        target.{{ name }} IS NOT DISTINCT FROM source.{{ name }}{{ " AND" if not loop.last }}
{%- endfor %}
    )
{%- endmacro %}
