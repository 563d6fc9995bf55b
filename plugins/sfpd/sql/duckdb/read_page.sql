{#- One API page, read by DuckDB as one JSON value per field (page = read_json of the body):
    the field as text (filed_online as a boolean), and per row the first field whose JSON type
    is wrong, worded as sfpd.schema words it for decoded rows. -#}
{%- macro json_type_name(column) -%}
    CASE json_type({{ column }})
        WHEN 'VARCHAR' THEN 'str' WHEN 'BOOLEAN' THEN 'bool' WHEN 'UBIGINT' THEN 'int'
        WHEN 'BIGINT' THEN 'int' WHEN 'DOUBLE' THEN 'float' WHEN 'OBJECT' THEN 'dict'
        WHEN 'ARRAY' THEN 'list' ELSE lower(json_type({{ column }}))
    END
{%- endmacro %}
SELECT
{%- for f in fields %}
    {% if f.name == bool_field -%}
    TRY_CAST("{{ f.name }}" ->> '$' AS BOOLEAN) AS "{{ f.name }}",
    {%- else -%}
    "{{ f.name }}" ->> '$' AS "{{ f.name }}",
    {%- endif %}
{%- endfor %}
    COALESCE(
    {%- for f in fields %}
        {%- set expected = 'BOOLEAN' if f.name == bool_field else 'VARCHAR' %}
        CASE WHEN json_type("{{ f.name }}") NOT IN ('{{ expected }}', 'NULL')
            THEN '{{ f.name }}: expected a JSON {{ 'bool' if f.name == bool_field else 'str' }}, got '
                || {{ json_type_name('"' ~ f.name ~ '"') }}
        END{{ "," if not loop.last }}
    {%- endfor %}
    ) AS _reason
FROM page
