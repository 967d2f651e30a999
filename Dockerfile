# Browser vendor code (hls.js, player.js) from the npm registry, pinned by package-lock.json.
FROM node:20-slim AS vendor
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=echonest_analytics.settings
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt -c requirements/constraints.txt
COPY . .
COPY --from=vendor /app/node_modules node_modules
RUN DEBUG=true python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "echonest_analytics.wsgi:application", "--config", "gunicorn.conf.py"]
